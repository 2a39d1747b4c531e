"""Attributions in popularity points: which characteristics push a score up or down.

The model takes the characteristics in Spotify units (key is one input), so attributions
are per characteristic as the user sees them. Default: Integrated Gradients against the
typical TikTok track (training medians).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients

from virality.features import FEATURE_NAMES
from virality.predict import Predictor

IG_STEPS = 50


def _baseline_array(predictor: Predictor, baseline: dict[str, float] | None) -> np.ndarray:
    song = baseline if baseline is not None else predictor.typical_song
    return np.array([[float(song[n]) for n in FEATURE_NAMES]])


class _PointsFromTransformed(torch.nn.Module):
    """The model after its input transform: (n, 13) transformed inputs → (n,) points."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.backbone(z) * self.model.target_std + self.model.target_mean


def group_columns(values: np.ndarray, groups: tuple[int, ...]) -> np.ndarray:
    """Sum (n, m) transformed-input columns into (n, 12) characteristics (key's sin and cos
    are one characteristic)."""
    out = np.zeros((values.shape[0], len(FEATURE_NAMES)))
    np.add.at(out.T, np.asarray(groups), values.T)
    return out


def integrated_gradients(predictor: Predictor, X: np.ndarray, baseline: dict[str, float] | None = None,
                         n_steps: int = IG_STEPS, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """IG attributions ``(n, 12)`` in points and Captum's convergence delta ``(n,)``.

    ``X``: (n, 12) characteristics; ``baseline``: a song (default: the typical track).
    The path runs straight in the model's transformed input space (quantile-normal
    scores, key on a circle) from the baseline to the song; the transform is a fixed,
    per-characteristic map, so the attributions of a characteristic's columns are summed
    and the row sums still equal f(x) − f(baseline) up to the delta. This path avoids the
    kinks of the piecewise-linear quantile map and costs one transform per row.
    """
    model = predictor.model
    X = np.asarray(X, dtype=np.float32).reshape(-1, len(FEATURE_NAMES))
    with torch.inference_mode():
        z0 = model.transform(torch.as_tensor(_baseline_array(predictor, baseline), dtype=torch.float32))
    ig = IntegratedGradients(_PointsFromTransformed(model))
    attributions, deltas = [], []
    for start in range(0, len(X), chunk):
        with torch.inference_mode():
            z = model.transform(torch.from_numpy(X[start:start + chunk]))
        z = z.clone()
        attr, delta = ig.attribute(z, baselines=z0.clone().expand_as(z), n_steps=n_steps,
                                   method="gausslegendre", return_convergence_delta=True,
                                   internal_batch_size=max(len(z), 1) * 8)
        attributions.append(group_columns(attr.detach().numpy().astype(np.float64), model.transform.output_groups))
        deltas.append(delta.detach().numpy().astype(np.float64))
    return np.concatenate(attributions), np.concatenate(deltas)


def attribute_frame(predictor: Predictor, X: np.ndarray, baseline: dict[str, float] | None = None) -> pd.DataFrame:
    """(n, 12) characteristics → DataFrame (n, 12) of IG attributions in points."""
    attributions, _ = integrated_gradients(predictor, X, baseline)
    return pd.DataFrame(attributions, columns=list(FEATURE_NAMES))


def top_drivers(attributions: pd.DataFrame, k: int = 2) -> pd.DataFrame:
    """Per row, the ``k`` characteristics pushing the score up most and holding it back most.

    Returns columns ``up_1..up_k`` and ``down_1..down_k`` (characteristic names, empty
    when fewer than k push that way).
    """
    values = attributions.to_numpy()
    names = np.array(attributions.columns)
    order_up = np.argsort(-values, axis=1)[:, :k]
    order_down = np.argsort(values, axis=1)[:, :k]
    result = {}
    for i in range(k):
        up, down = order_up[:, i], order_down[:, i]
        rows = np.arange(len(values))
        result[f"up_{i + 1}"] = np.where(values[rows, up] > 0, names[up], "")
        result[f"down_{i + 1}"] = np.where(values[rows, down] < 0, names[down], "")
    return pd.DataFrame(result, index=attributions.index)[[f"up_{i + 1}" for i in range(k)]
                                                          + [f"down_{i + 1}" for i in range(k)]]
