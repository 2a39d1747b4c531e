"""The prediction interval: its two ends as quantile-regression curves in the score.

``fit_score_interval`` fits them (scipy solves the quantile regressions) and picks their shape by
cross-validated per-decile coverage; ``interval_bounds`` evaluates them for any scores.
"""

from __future__ import annotations

import numpy as np

from virality.model.metrics import coverage, coverage_by_decile

# Shapes the interval's ends may take (``fit_score_interval`` picks one by an inner
# cross-validated criterion): "poly<d>" = polynomial of degree d in the score, "hinge<m>" =
# piecewise-linear in the score with m knots at evenly spaced quantiles of the calibration scores.
INTERVAL_FORMS = ("poly1", "poly2", "poly3", "hinge1", "hinge2", "hinge3", "hinge4", "hinge5", "hinge6")


def fit_score_interval(score: np.ndarray, y_true: np.ndarray, level: float,
                       forms: tuple[str, ...] = INTERVAL_FORMS, selection_folds: int = 5, seed: int = 0,
                       selection_repeats: int = 3) -> dict:
    """An interval whose ends follow the score, fitted by quantile regression of held-out
    popularity on held-out score at the ``(1 - level)/2`` and ``(1 + level)/2`` quantiles.

    ``score``, ``y_true``: (n,) points for tracks the model that scored them never trained
    on (one per track; ideally out-of-fold scores of the whole training part). The ends'
    shape is chosen among ``forms`` on these tracks only, by what the interval promises:
    ``selection_repeats`` × ``selection_folds``-fold cross-validation (seeded) of the
    coverage per decile of score, keeping the form with the smallest mean squared gap to
    ``level`` (ties: fewer coefficients); the cross-validated pinball loss is recorded too.
    Then the chosen form is refitted on all the tracks. A fixed ±half-width over-covers
    some scores and under-covers others: popularity piles up at 0 and tops out near 90.

    Returns a JSON-ready dict read by ``interval_bounds``: per end the coefficients
    (``lower``/``upper``) and the basis (``lower_basis``/``upper_basis``), the calibrated
    ``score_range`` (beyond it an end keeps its distance from the score at the nearer edge),
    the mean ``half_width``, in-sample ``calibration_coverage`` and the selection's record.
    """
    score, y_true = np.asarray(score, float), np.asarray(y_true, float)
    quantiles = {"lower": (1 - level) / 2, "upper": (1 + level) / 2}
    splits = [np.random.default_rng(seed + r).permutation(len(score)) % max(selection_folds, 2)
              for r in range(max(selection_repeats, 1))]
    bases = {form: make_basis(form, score) for form in forms}
    record = {form: _cross_validate_form(basis, score, y_true, quantiles, splits, level) for form, basis in bases.items()}
    chosen = min(forms, key=lambda f: (record[f]["decile_error"], _size(bases[f])))
    basis = bases[chosen]
    interval: dict = {"method": "crossfit_quantile_regression", "level": level,
                      "score_range": [float(score.min()), float(score.max())]}
    for side, q in quantiles.items():
        interval[side], interval[f"{side}_basis"] = _quantile_fit(basis, score, y_true, q), basis
    low, high = interval_bounds(interval, score)
    return {**interval, "half_width": float(np.mean(high - low) / 2),
            "calibration_coverage": coverage(y_true, low, high),
            "selection": {"form": chosen, "folds": selection_folds, "repeats": selection_repeats,
                          "criterion": "cross-validated mean squared gap of per-decile coverage to the level",
                          "cv_decile_rms": {f: round(float(np.sqrt(r["decile_error"])), 5) for f, r in record.items()},
                          "cv_pinball": {f: round(r["pinball"], 5) for f, r in record.items()},
                          "cv_coverage": record[chosen]["coverage"],
                          "cv_coverage_by_decile": record[chosen]["by_decile"]}}


def _cross_validate_form(basis: dict, score: np.ndarray, y_true: np.ndarray, quantiles: dict,
                         splits: list[np.ndarray], level: float) -> dict:
    """Held-out behaviour of one form, averaged over the fold assignments ``splits``:
    ``decile_error`` (mean squared gap of per-decile coverage to ``level``), ``pinball``
    (both ends' mean pinball loss, points), ``coverage`` and ``by_decile``."""
    errors, pinballs, overall, by_decile = [], [], [], []
    for folds in splits:
        ends = [_cross_validated(basis, score, y_true, q, folds) for q in quantiles.values()]
        pinballs.append(sum(float(_pinball_each(y_true, e, q).mean()) for e, q in zip(ends, quantiles.values())))
        low, high = _ordered(*ends, score)
        deciles = np.array(coverage_by_decile(score, y_true, low, high))
        errors.append(float(np.nanmean((deciles - level) ** 2)))
        overall.append(coverage(y_true, low, high))
        by_decile.append(deciles)
    return {"decile_error": float(np.mean(errors)), "pinball": float(np.mean(pinballs)),
            "coverage": float(np.mean(overall)), "by_decile": np.mean(by_decile, axis=0).tolist()}


def _cross_validated(basis: dict, score: np.ndarray, y_true: np.ndarray, quantile: float,
                     folds: np.ndarray) -> np.ndarray:
    """(n,) held-out values of the ``quantile`` curve: each fold's from a fit on the others."""
    held_out = np.empty(len(score))
    for k in np.unique(folds):
        fitted = _quantile_fit(basis, score[folds != k], y_true[folds != k], quantile)
        held_out[folds == k] = _evaluate(basis, fitted, score[folds == k])
    return held_out


def _pinball_each(y_true: np.ndarray, bound: np.ndarray, quantile: float) -> np.ndarray:
    diff = np.asarray(y_true, float) - np.asarray(bound, float)
    return np.maximum(quantile * diff, (quantile - 1) * diff)


def _size(basis: dict) -> int:
    """Number of coefficients of a basis."""
    return basis["degree"] + 1 if basis["kind"] == "polynomial" else 2 + len(basis["knots"])


def make_basis(form: str, score: np.ndarray) -> dict:
    """A form name ("poly2", "hinge5") → the JSON basis description; hinge knots sit at
    evenly spaced quantiles of ``score`` (points)."""
    kind, size = form.rstrip("0123456789"), int(form[len(form.rstrip("0123456789")):] or 0)
    if kind == "poly":
        return {"kind": "polynomial", "degree": size}
    if kind == "hinge":
        knots = np.unique(np.quantile(score, np.arange(1, size + 1) / (size + 1)))
        return {"kind": "hinge", "knots": [round(float(k), 4) for k in knots]}
    raise ValueError(f"unknown interval form {form!r}: use poly<degree> or hinge<knots>")


def _design(basis: dict, score: np.ndarray) -> np.ndarray:
    """(n,) points → (n, p) columns of ``basis``, the constant column first."""
    s = np.asarray(score, float)[:, None] / 100.0
    if basis["kind"] == "polynomial":
        return s ** np.arange(basis["degree"] + 1)
    knots = np.asarray(basis["knots"], float)[None, :] / 100.0
    return np.hstack([np.ones_like(s), s, np.maximum(s - knots, 0.0)])


def _quantile_fit(basis: dict, score: np.ndarray, y_true: np.ndarray, quantile: float) -> list[float]:
    """Linear quantile regression of ``y_true`` on the basis columns: coefficients, constant first.

    Solved as the dual linear programme (max y·a subject to Xᵀa = (1 − q)·Xᵀ1, 0 ≤ a ≤ 1),
    whose equality multipliers are the coefficients: ~10× faster than the primal that
    scikit-learn's QuantileRegressor solves, with the same optimum."""
    from scipy.optimize import linprog

    design = _design(basis, score)
    result = linprog(-np.asarray(y_true, float), A_eq=design.T, b_eq=(1 - quantile) * design.sum(0),
                     bounds=(0, 1), method="highs")
    if result.status != 0:
        raise ValueError(f"quantile regression failed: {result.message}")
    return [float(c) for c in -result.eqlin.marginals]


def _evaluate(basis: dict, coefficients, score: np.ndarray) -> np.ndarray:
    return _design(basis, score) @ np.asarray(coefficients, float)


def _ordered(low: np.ndarray, high: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clip to 0–100 with low ≤ score ≤ high (what a user is shown)."""
    return np.clip(np.minimum(low, score), 0, 100), np.clip(np.maximum(high, score), 0, 100)


def interval_bounds(interval: dict, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n,) clipped scores → (low, high), each (n,) in 0–100 with low ≤ score ≤ high.

    Reads ``fit_score_interval``'s ends. Older bundles: ends without ``*_basis`` are
    polynomials of ``score/100`` (degree = coefficients − 1), no ``score_range`` means no
    clamping, and an interval with only ``half_width`` is symmetric."""
    score = np.asarray(score, float)
    if "lower" not in interval:
        return _ordered(score - interval["half_width"], score + interval["half_width"], score)
    at = score
    if "score_range" in interval:  # beyond the calibrated scores an end keeps its edge distance
        at = np.clip(score, *interval["score_range"])
    ends = []
    for side in ("lower", "upper"):
        coefficients = interval[side]
        basis = interval.get(f"{side}_basis", {"kind": "polynomial", "degree": len(coefficients) - 1})
        ends.append(_evaluate(basis, coefficients, at) + (score - at))
    return _ordered(*ends, score)
