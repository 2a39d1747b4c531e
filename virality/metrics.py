"""Regression metrics and conformal intervals (numpy only)."""

from __future__ import annotations

import numpy as np


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation with average ranks for ties; 0.0 when one side is constant."""
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    # average the ranks of tied values
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """R², RMSE, MAE (popularity points) and Spearman of predictions ``y_pred`` (n,)."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    residual = y_true - y_pred
    total = np.sum((y_true - y_true.mean()) ** 2)
    return {
        "r2": float(1 - np.sum(residual**2) / total) if total > 0 else 0.0,
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "mae": float(np.mean(np.abs(residual))),
        "spearman": spearman(y_true, y_pred),
    }


def conformal_half_width(abs_residuals: np.ndarray, level: float) -> float:
    """Split-conformal half-width: the ⌈(n+1)·level⌉-th smallest held-out |residual|."""
    scores = np.sort(np.asarray(abs_residuals, float))
    rank = int(np.ceil((len(scores) + 1) * level)) - 1
    return float(scores[min(rank, len(scores) - 1)])


def coverage(y_true: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Fraction of ``y_true`` inside ``[low, high]``."""
    y_true = np.asarray(y_true, float)
    return float(np.mean((y_true >= low) & (y_true <= high)))


def fit_score_interval(score: np.ndarray, y_true: np.ndarray, level: float, degree: int = 2) -> dict:
    """An interval whose ends follow the score: ``low = Σ a_k·(score/100)^k`` and
    ``high = Σ b_k·(score/100)^k`` (k = 0…``degree``), fitted by quantile regression of
    held-out popularity on the model's held-out score at the ``(1 - level)/2`` and
    ``(1 + level)/2`` quantiles.

    ``score``, ``y_true``: (n,) points on tracks the model did not train on. A fixed
    ±half-width over-covers some scores and under-covers others: popularity piles up at 0
    and tops out near 90, so the spread of real popularity is largest for middling scores
    (hence a curve, not a line). Returns a JSON-ready dict read by ``interval_bounds``.
    """
    from sklearn.linear_model import QuantileRegressor

    score, y_true = np.asarray(score, float), np.asarray(y_true, float)
    design = _powers(score, degree)[:, 1:]
    curves = {}
    for side, q in (("lower", (1 - level) / 2), ("upper", (1 + level) / 2)):
        fit = QuantileRegressor(quantile=q, alpha=0.0, solver="highs").fit(design, y_true)
        curves[side] = [float(fit.intercept_), *map(float, fit.coef_)]
    low, high = interval_bounds(curves, score)
    return {"method": "score_polynomial_quantile_regression", "level": level, "degree": degree, **curves,
            "half_width": float(np.mean(high - low) / 2), "calibration_coverage": coverage(y_true, low, high)}


def _powers(score: np.ndarray, degree: int) -> np.ndarray:
    """(n,) points → (n, degree + 1) columns (score/100)^0 … (score/100)^degree."""
    return (np.asarray(score, float)[:, None] / 100.0) ** np.arange(degree + 1)


def interval_bounds(interval: dict, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n,) clipped scores → (low, high), each (n,) in 0–100 with low ≤ score ≤ high.

    Reads ``fit_score_interval``'s curves, or a symmetric ``half_width`` for older bundles."""
    score = np.asarray(score, float)
    if "lower" in interval:
        lower, upper = np.asarray(interval["lower"]), np.asarray(interval["upper"])
        low = _powers(score, len(lower) - 1) @ lower
        high = _powers(score, len(upper) - 1) @ upper
    else:
        low, high = score - interval["half_width"], score + interval["half_width"]
    return np.clip(np.minimum(low, score), 0, 100), np.clip(np.maximum(high, score), 0, 100)


def coverage_by_decile(score: np.ndarray, y_true: np.ndarray, low: np.ndarray, high: np.ndarray) -> list[float]:
    """Coverage within each decile of ``score`` (10 values, lowest scores first)."""
    edges = np.quantile(score, np.linspace(0, 1, 11)[1:-1])
    decile = np.searchsorted(edges, score, side="right")
    inside = (y_true >= low) & (y_true <= high)
    return [float(inside[decile == d].mean()) if np.any(decile == d) else float("nan") for d in range(10)]
