"""Quantile units of real tracks: each continuous characteristic as the share of training
tracks below it (0–1), so that "+0.1" means "past another 10 % of real tracks" for tempo and
energy alike. What-if measures and searches its edits in these units
(``Predictor.quantile_scale``).
"""

from __future__ import annotations

import numpy as np

from virality.features import CONTINUOUS
from virality.model.networks import quantile_knots


class QuantileScale:
    """Maps characteristics between Spotify units and quantile units of real tracks.

    Built from the 101 × 12 quantile table; tied quantiles (e.g. the many zeros of
    instrumentalness) collapse to one knot at their mean level, so the map is strictly
    increasing and invertible, like the model's own input transform. ``low``/``high`` (12,):
    the range of real tracks (0.5 % / 99.5 % quantiles) in Spotify units.
    """

    def __init__(self, quantiles: np.ndarray, low: np.ndarray, high: np.ndarray):
        quantiles = np.asarray(quantiles, float)
        self.knots, self.levels = (list(part) for part in zip(*(quantile_knots(quantiles[:, j]) for j in CONTINUOUS)))
        self.low, self.high = np.asarray(low, float), np.asarray(high, float)

    def to_quantile(self, raw: np.ndarray) -> np.ndarray:
        """(n, 12) Spotify units → (n, 10) quantile units of the continuous characteristics."""
        raw = np.atleast_2d(raw)
        return np.stack([np.interp(raw[:, j], k, lv) for j, k, lv in zip(CONTINUOUS, self.knots, self.levels)], 1)

    def to_raw(self, u: np.ndarray) -> np.ndarray:
        """(n, 10) quantile units → (n, 10) Spotify units (continuous characteristics)."""
        u = np.atleast_2d(u)
        return np.stack([np.interp(u[:, c], lv, k) for c, (k, lv) in enumerate(zip(self.knots, self.levels))], 1)
