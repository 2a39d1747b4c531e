"""The model: networks, training, the interval, the saved bundle, predictions, the additive view, the benchmark report."""
