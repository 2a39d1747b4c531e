"""Exhaustive reference for the what-if search: the closest edit that reaches a target, per
set of changed characteristics, by brute force on a grid (benchmark and tests; not the app).

For every set S of at most ``max_changes`` allowed continuous characteristics, every
combination of values on a grid (``levels`` points per characteristic, evenly spaced in
quantile units of real tracks between the box ends, snapped to the slider steps, the
original's own value excluded so S is exactly what changes) is scored in chunks under
``torch.inference_mode``. Around the best few valid points of each S, finer local grids
(``refine_rounds`` rounds, each ``refine_levels`` points per characteristic over ± one cell
of the previous grid) find the boundary more exactly. Distances are the search's own L1 in
quantile units (``virality.whatif.search._distance``).

What it gives is an *upper bound* on the true minimum distance per set (a grid point is a
real, valid edit); with the refinement it is tight to about a slider step. Any k edits with
k different sets of changes are at least as far, on average, as the k smallest per-set
optima (``lower_bound_of_k``): the yardstick for the search's mean distance.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from virality.chunks import row_chunks
from virality.features import CONTINUOUS
from virality.model.quantiles import QuantileScale
from virality.whatif.search import snap_columns

ScoreFn = Callable[[np.ndarray], np.ndarray]  # (n, 12) songs → (n,) points
KeepFn = Callable[[np.ndarray], np.ndarray]  # (n, 12) songs → (n,) bool: edits that count


@dataclass
class SetOptimum:
    """The closest valid edit found that changes exactly ``columns`` (model indices)."""

    columns: tuple[int, ...]
    distance: float  # quantile units (L1)
    song: np.ndarray  # (12,)
    score: float


def _axis(scale: QuantileScale, x0: np.ndarray, j: int, u_from: float, u_to: float, levels: int,
          box_low: np.ndarray, box_high: np.ndarray) -> np.ndarray:
    """Slider values of characteristic ``j`` (model index) for ``levels`` points evenly spaced
    in quantile units over [u_from, u_to], inside the box, without the original's value."""
    c = CONTINUOUS.index(j)
    u = np.tile(scale.to_quantile(x0[None])[0], (levels, 1))
    u[:, c] = np.linspace(u_from, u_to, levels)
    values = snap_columns(scale.to_raw(u)[:, [c]], [j])[:, 0]
    values = np.clip(values, box_low[j], box_high[j])
    original = snap_columns(x0[None, [j]], [j])[0, 0]
    return np.unique(values[(values != original) & (values != x0[j])])


def _product(x0: np.ndarray, columns: Sequence[int], axes: Sequence[np.ndarray]) -> np.ndarray:
    """(Π len(axes), 12) songs: ``x0`` with ``columns`` set to every combination of ``axes``."""
    grids = np.meshgrid(*axes, indexing="ij")
    X = np.tile(x0, (grids[0].size, 1))
    for j, g in zip(columns, grids):
        X[:, j] = g.ravel()
    return X


def _l1(scale: QuantileScale, x0: np.ndarray, X: np.ndarray) -> np.ndarray:
    return np.abs(scale.to_quantile(X) - scale.to_quantile(x0[None])).sum(1)


def _best_valid(score: ScoreFn, scale: QuantileScale, x0: np.ndarray, X: np.ndarray, target: float,
                top: int, chunk: int, keep: KeepFn | None = None) -> list[tuple[float, np.ndarray, float]]:
    """The ``top`` closest rows of X (n, 12) that reach ``target`` (and pass ``keep``):
    [(distance, song, score)]."""
    found: list[tuple[float, np.ndarray, float]] = []
    for rows in row_chunks(len(X), chunk):
        part = X[rows]
        s = score(part)
        ok = s >= target
        if keep is not None and ok.any():
            ok[ok] = keep(part[ok])
        ok = np.flatnonzero(ok)
        if not ok.size:
            continue
        d = _l1(scale, x0, part[ok])
        for i in np.argsort(d)[:top]:
            found.append((float(d[i]), part[ok[i]].copy(), float(s[ok[i]])))
        found = sorted(found, key=lambda f: f[0])[:top]
    return found


def set_optima(score: ScoreFn, scale: QuantileScale, x0: np.ndarray, target: float, allowed: Sequence[int],
               box_low: np.ndarray, box_high: np.ndarray, max_changes: int = 3, levels: int = 25,
               refine_levels: int = 7, refine_rounds: int = 2, top: int = 3, chunk: int = 16384,
               keep: KeepFn | None = None) -> dict[tuple[int, ...], SetOptimum]:
    """Closest valid edit per set of changed characteristics (sets with none are left out).
    With ``keep`` (e.g. "in distribution"), only edits it accepts count.

    ``score``: (n, 12) → (n,) points, as the predictor reports them; ``x0``: (12,) the song;
    ``allowed``: model indices of the continuous characteristics that may change;
    ``box_low``/``box_high``: (12,) Spotify units (the search's box).
    """
    u0 = scale.to_quantile(x0[None])[0]
    u_lo = np.minimum(scale.to_quantile(box_low[None])[0], u0)
    u_hi = np.maximum(scale.to_quantile(box_high[None])[0], u0)
    cell = (u_hi - u_lo) / (levels - 1)
    axes = {j: _axis(scale, x0, j, u_lo[CONTINUOUS.index(j)], u_hi[CONTINUOUS.index(j)], levels, box_low, box_high)
            for j in allowed}
    optima: dict[tuple[int, ...], SetOptimum] = {}
    for size in range(1, min(max_changes, len(allowed)) + 1):
        for columns in itertools.combinations(sorted(allowed), size):
            if any(not len(axes[j]) for j in columns):
                continue
            found = _best_valid(score, scale, x0, _product(x0, columns, [axes[j] for j in columns]), target, top, chunk,
                                keep)
            if not found:
                continue
            found = _refine(score, scale, x0, target, columns, found, cell, u_lo, u_hi, box_low, box_high,
                            refine_levels, refine_rounds, top, chunk, keep)
            d, song, s = found[0]
            optima[columns] = SetOptimum(columns, d, song, s)
    return optima


def _refine(score, scale, x0, target, columns, found, cell, u_lo, u_hi, box_low, box_high, refine_levels,
            refine_rounds, top, chunk, keep):
    """Finer grids (± one cell, ``refine_levels`` points per characteristic) around each of
    the ``found`` points, ``refine_rounds`` times, each round's cell a ``refine_levels``-th
    of the last; keeps the ``top`` closest valid points (the set stays exactly ``columns``)."""
    width = cell.copy()
    for _ in range(refine_rounds):
        trials = []
        for _, song, _ in found:
            u = scale.to_quantile(song[None])[0]
            axes = []
            for j in columns:
                c = CONTINUOUS.index(j)
                lo, hi = max(u[c] - width[c], u_lo[c]), min(u[c] + width[c], u_hi[c])
                axes.append(_axis(scale, x0, j, lo, hi, refine_levels, box_low, box_high))
            if all(len(a) for a in axes):
                trials.append(_product(x0, columns, axes))
        if trials:
            more = _best_valid(score, scale, x0, np.concatenate(trials), target, top, chunk, keep)
            found = sorted(found + more, key=lambda f: f[0])
            unique, seen = [], set()
            for f in found:
                if f[1].tobytes() not in seen:
                    seen.add(f[1].tobytes())
                    unique.append(f)
            found = unique[:top]
        width = width * 2 / (refine_levels - 1)
    return found


def closest(optima: dict[tuple[int, ...], SetOptimum]) -> float:
    """Smallest distance of any valid edit found (inf when none)."""
    return min((o.distance for o in optima.values()), default=float("inf"))


def lower_bound_of_k(optima: dict[tuple[int, ...], SetOptimum], k: int) -> float:
    """Mean of the k smallest per-set optima: no k edits with k different sets of changes can
    average less (as far as the grid resolves each set's optimum). NaN with fewer than k sets."""
    d = sorted(o.distance for o in optima.values())
    return float(np.mean(d[:k])) if len(d) >= k else float("nan")
