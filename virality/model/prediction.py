"""Predictions with an 80 % interval, a percentile and an out-of-distribution check.

``load_predictor()`` loads the bundle once per process. The score is the model's output
clipped to 0–100; the interval's ends are curves in the score fitted by quantile regression
on out-of-fold scores of every training track (``metrics.fit_score_interval``, cross-fitted
by ``train.calibrate_interval``), so about 80 % of unseen tracks' real popularity falls
inside it at every level of score; the percentile places the score
among the model's scores of the real TikTok training tracks.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from virality.features import BY_NAME, FEATURE_NAMES, parse_song
from virality.model.bundle import ARTIFACTS_DIR, load_bundle, load_fit
from virality.model.fit import TikTokFit, fit_plan
from virality.model.inference import model_plan, run_chunked
from virality.model.metadata import BundleMetadata, ScoreQuantiles
from virality.model.networks import ViralityModel
from virality.model.quantiles import QuantileScale

# rows per forward pass: the scoring path's widest activations (rows, 8 members · 64) then stay
# in cache (both models on 100k rows, one thread: see "forward passes" in benchmarks/results/score_memory.md)
CHUNK_ROWS = 1024
PREDICTION_COLUMNS = ["predicted_popularity", "low", "high", "percentile", "tiktok_fit"]
FIT_COLUMN = "tiktok_fit"


@dataclass
class Prediction:
    """One song's score (0–100 points), its interval, percentile (0–100), OOD verdict and, when
    the bundle has the TikTok-fit model, its fit (0–100 %) and the fit's percentile among
    catalogue tracks."""

    score: float
    low: float
    high: float
    percentile: float
    out_of_distribution: bool = False
    unusual: list[str] = field(default_factory=list)  # characteristics outside 99 % of real tracks
    distance: float = 0.0  # squared Mahalanobis distance to the training tracks
    tiktok_fit: float | None = None
    fit_percentile: float | None = None


class Predictor:
    """The bundled model plus everything needed to turn its output into a verdict.

    ``info``: the bundle's typed metadata (``virality.model.metadata.BundleMetadata``)."""

    def __init__(self, model: ViralityModel, info: BundleMetadata, fit: TikTokFit | None = None):
        self.model = model
        self.info = info
        self.fit = fit  # the TikTok-fit model (``virality.model.fit``), None without one
        self.half_width = info.interval.half_width  # mean half-width on held-out tracks
        self.interval_level = info.interval.level
        self._percentile_knots = _percentile_knots(info.scores)

    @functools.cached_property
    def quantile_scale(self) -> QuantileScale:
        """Spotify units ↔ quantile units of the training tracks (What-if's distances)."""
        dist = self.info.distribution
        return QuantileScale(dist.quantiles, dist.low, dist.high)

    @property
    def typical_song(self) -> dict[str, float]:
        """Medians of the training tracks on the slider steps, in Spotify units: the default
        baseline, the fill value, and exactly the song the Predict page starts from.

        Snapped because a raw median can sit between steps (instrumentalness 0.0000016):
        "0.00 vs typical 0.00" would otherwise show a nonzero effect no slider can undo."""
        return {n: BY_NAME[n].snap(self.info.training_medians[n]) for n in FEATURE_NAMES}

    @property
    def typical_error(self) -> float:
        """Mean absolute error on held-out tracks, in points."""
        return self.info.metrics.model.mae

    def raw_scores(self, X: np.ndarray) -> np.ndarray:
        """(n, 12) characteristics → (n,) unclipped model output, chunked, no autograd."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"expected an (n, {len(FEATURE_NAMES)}) array, got shape {X.shape}")
        return run_chunked(self._score_forward, X, CHUNK_ROWS)

    @functools.cached_property
    def _score_forward(self):
        """``self.model``'s forward pass for scoring (``virality.model.inference``: the same
        outputs within 1e-4 points, in fewer passes over memory)."""
        return model_plan(self.model)

    @functools.cached_property
    def _fit_forward(self):
        return fit_plan(self.fit)

    def predict_array(self, X: np.ndarray) -> pd.DataFrame:
        """(n, 12) → DataFrame with ``predicted_popularity``, ``low``, ``high``, ``percentile``,
        ``tiktok_fit`` (percent; NaN when the bundle has no TikTok-fit model)."""
        return pd.DataFrame(dict(zip(PREDICTION_COLUMNS, (*self.predict_columns(X), self.fit_percent(X)))))

    def fit_percent(self, X: np.ndarray) -> np.ndarray:
        """(n, 12) → (n,) TikTok fit in percent (NaN without a fit model)."""
        if self.fit is None:
            return np.full(len(X), np.nan)
        return run_chunked(self._fit_forward, X, CHUNK_ROWS)

    def target_scores(self, X: np.ndarray, target: str = "popularity") -> np.ndarray:
        """(n, 12) → (n,) the score shown for ``target``: popularity (0–100 points, clipped) or
        ``"fit"``, the TikTok fit (0–100 %)."""
        if target == "fit":
            return self.fit_percent(X)
        if target != "popularity":
            raise ValueError(f"unknown target {target!r}; choose popularity or fit")
        return np.clip(self.raw_scores(X), 0, 100)

    def fit_percentile(self, fit: np.ndarray) -> np.ndarray:
        """Percent of catalogue tracks whose (out-of-fold) fit is at or below ``fit`` (percent)."""
        info = self.info.fit
        return np.interp(np.asarray(fit, float), *_tie_free(info.levels, info.catalogue_quantiles), left=0.0, right=100.0)

    def predict_columns(self, X: np.ndarray) -> tuple[np.ndarray, ...]:
        """(n, 12) → (score, low, high, percentile), each (n,): ``predict_array`` without the
        DataFrame, which alone costs more than the one-row forward pass."""
        score = self.target_scores(X)
        low, high = self.info.interval.bounds(score)
        return score, low, high, self.percentile(score)

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A DataFrame with the 12 characteristic columns (valid values) → prediction columns.

        The result has ``frame``'s index. Validate untrusted tables first with
        ``virality.data.check_rows``.
        """
        missing = [n for n in FEATURE_NAMES if n not in frame.columns]
        if missing:
            raise ValueError(f"missing characteristic column(s): {', '.join(missing)}")
        result = self.predict_array(frame[list(FEATURE_NAMES)].to_numpy(np.float64))
        result.index = frame.index
        return result

    def predict_song(self, song: Mapping[str, Any]) -> Prediction:
        """One song (characteristic → value; missing ones take their default) → ``Prediction``."""
        values, _ = parse_song(song)
        x = np.array([[values[n] for n in FEATURE_NAMES]])
        score, low, high, percentile = (float(column[0]) for column in self.predict_columns(x))
        distance, unusual = self.ood_check(x)
        fit = float(self.fit_percent(x)[0]) if self.fit is not None else None
        return Prediction(score=score, low=low, high=high, percentile=percentile,
                          out_of_distribution=bool(distance[0] > self.info.distribution.d2_threshold or unusual[0]),
                          unusual=unusual[0], distance=float(distance[0]), tiktok_fit=fit,
                          fit_percentile=None if fit is None else float(self.fit_percentile(fit)))

    def percentile(self, score: np.ndarray) -> np.ndarray:
        """Percent of real training tracks the model scores at or below ``score``."""
        unique, levels = self._percentile_knots
        return np.interp(np.asarray(score, float), unique, levels, left=0.0, right=100.0)

    def ood_check(self, X: np.ndarray) -> tuple[np.ndarray, list[list[str]]]:
        """(n, 12) → squared Mahalanobis distances (n,) and, per row, the characteristics
        outside the 0.5–99.5 % range of real tracks."""
        with torch.inference_mode():
            z = self.model.transform(torch.as_tensor(np.asarray(X), dtype=torch.float32)).numpy().astype(float)
        dist = self.info.distribution
        centred = z - dist.mean
        distance = np.einsum("ni,ij,nj->n", centred, dist.precision, centred)
        outside = (X < dist.low) | (X > dist.high)
        unusual = [[FEATURE_NAMES[j] for j in np.flatnonzero(row) if not BY_NAME[FEATURE_NAMES[j]].is_discrete]
                   for row in outside]
        return distance, unusual

    def is_out_of_distribution(self, X: np.ndarray) -> np.ndarray:
        """(n, 12) → (n,) bool: unlike the real tracks the model learned from."""
        distance, unusual = self.ood_check(X)
        return (distance > self.info.distribution.d2_threshold) | np.array([bool(u) for u in unusual])


def _percentile_knots(scores: ScoreQuantiles) -> tuple[np.ndarray, np.ndarray]:
    """The bundle's score quantiles → (unique scores, percent levels) to interpolate on.

    Tied quantiles (many tracks on one score) would make the inverse CDF a step: a tie gets
    the middle of its levels."""
    return _tie_free(scores.levels, scores.predicted_quantiles)


def _tie_free(levels: np.ndarray, quantiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(levels, quantiles) → (unique quantiles, the middle of each one's levels)."""
    unique, first = np.unique(quantiles, return_index=True)
    last = len(quantiles) - 1 - np.unique(quantiles[::-1], return_index=True)[1]
    return unique, (levels[first] + levels[last]) / 2


@functools.lru_cache(maxsize=4)
def load_predictor(path: str | Path = ARTIFACTS_DIR) -> Predictor:
    """Load the bundle at ``path`` once per process (cached)."""
    model, info = load_bundle(path)
    return Predictor(model, info, load_fit(path, info))


def model_summary(predictor: Predictor, cross_validated: dict | None = None) -> str:
    """Plain words on which model is loaded and how far off it typically is.

    ``cross_validated``: the shipped recipe's entry in ``benchmarks/results/models.json``
    (``mae`` and ``r2`` as ``{"mean", "std"}``, 5 folds × 3 seeds), quoted beside the bundle's
    own out-of-fold figures (one cross-fitting of the training tracks)."""
    info = predictor.info
    metrics = info.metrics.model
    text = (f"Model: {info.model.arch} trained on all {info.data.train_tracks:,} tracks. "
            f"On tracks it never saw it is typically off by ±{metrics.mae:.0f} points (R² {metrics.r2:.2f}, "
            "out of fold)")
    if cross_validated:
        mae, r2 = cross_validated["mae"], cross_validated["r2"]
        text += (f"; over 5-fold cross-validation by song (3 seeds), ±{mae['mean']:.0f} points "
                 f"(R² {r2['mean']:.2f} ± {r2['std']:.2f})")
    return text + ": most of what makes a song popular is not in these 12 numbers."
