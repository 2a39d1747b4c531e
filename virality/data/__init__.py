"""Data in: reading user files, mapping their columns, validating cells, the training tracks, the demo tracks."""
