"""Regression metrics and interval coverage on held-out tracks (numpy)."""

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


def coverage(y_true: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Fraction of ``y_true`` inside ``[low, high]``."""
    y_true = np.asarray(y_true, float)
    return float(np.mean((y_true >= low) & (y_true <= high)))


def coverage_by_decile(score: np.ndarray, y_true: np.ndarray, low: np.ndarray, high: np.ndarray) -> list[float]:
    """Coverage within each decile of ``score`` (10 values, lowest scores first)."""
    edges = np.quantile(score, np.linspace(0, 1, 11)[1:-1])
    decile = np.searchsorted(edges, score, side="right")
    inside = (y_true >= low) & (y_true <= high)
    return [float(inside[decile == d].mean()) if np.any(decile == d) else float("nan") for d in range(10)]
