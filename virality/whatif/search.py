"""What-if: small, plausible edits to a song that raise its predicted score to a target.

The search works in *quantile units* of real tracks: each continuous characteristic is
mapped to the share of real TikTok tracks below it (0–1: ``Predictor.quantile_scale``, from
the bundle's quantile table), so "+0.1" means "past another 10 % of real tracks" for tempo
and for energy alike. Key (circular, 12 pitch classes) and mode are
discrete and tried by enumeration.

Steps (all batched: four forward passes of the model, no gradients, one torch thread):

1. **Line scans**: every single change is scored exactly on a line: ``SCAN_POINTS`` values per
   side of each allowed continuous characteristic (evenly spaced in quantile units up to the
   box: range of real tracks ∩ the user's bounds, on the slider steps), every allowed key and
   mode.
2. **Additive surrogate, exhaustive per set**: each scan's gain curve (points vs move) is
   interpolated at ``FINE_POINTS`` moves per side; for every set of 1 to ``MAX_SET``
   characteristics (within ``max_changes``), all combinations of their moves are summed
   (numpy, no model) and the cheapest whose gains reach the target is kept (the one that
   gains most where none does). The closest ``CLOSEST_SETS`` are verified whatever their
   moves; the rest only with substantial moves (≥ ``MIN_EXTRA``) in every changed
   characteristic, since a token extra is no new idea.
3. **Verification along rays**: each combination's moves are scaled by the ``RAY``
   multiples on the model; then around the boundary estimated by the secant between the last
   multiple short of the target and the first that reaches it (``REFINE`` offsets). The model is not additive (energy and loudness
   together can do more than apart), so
4. **Re-balancing**: for the ``BALANCE_SETS`` closest valid edits of 2–3 continuous changes,
   other shares of the move among the same characteristics (a ``BALANCE_LEVELS`` simplex grid)
   at radii up to the edit's own distance, refined the same way.
5. **Diverse choice and re-scoring**: valid first, then in distribution, then lowest
   distance + ``CHANGE_COST`` per change; each a new idea (a new set of changed
   characteristics, not another's set plus token extras) before any near-repeat. The k
   chosen are re-scored by ``Predictor.predict_array``: that score and its interval are
   reported and decide ``reached``; out-of-distribution ones are flagged.

The constants were chosen on 20 *tuning* songs, drawn apart from the 20 songs the benchmark
reports on (``python -m benchmarks.whatif --tune`` → benchmarks/results/whatif_tuning.md).
``benchmarks.whatif_reference`` finds the closest valid edit per set by brute force, as a yardstick.

Untouched characteristics are copied from the original song, bit for bit.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from virality.features import (
    BY_NAME,
    CONTINUOUS,
    FEATURE_NAMES,
    FEATURES,
    KEY_INDEX,
    MODE_INDEX,
    N_FEATURES,
    parse_song,
)
from virality.model.prediction import Predictor
from virality.model.quantiles import QuantileScale

_SLIDER_LOW, _SLIDER_HIGH, _SLIDER_STEP = (np.array([getattr(f, a) for f in FEATURES], float)
                                           for a in ("low", "high", "step"))
# What a producer can change in the mix, master, arrangement or edit without writing a new song:
# groove/beat emphasis, intensity, master loudness, instrumentation (acoustic vs produced),
# tempo and length. Key, mode and valence are songwriting; speechiness and instrumentalness
# change what the vocal is; liveness is how it was recorded.
PRODUCER_CHOICES = ("danceability", "energy", "loudness", "acousticness", "tempo", "duration")
# Constants chosen on the benchmark's *tuning* songs (benchmarks/whatif.py, ``tuning_songs``:
# 20 real tracks drawn apart from the 20 it reports on), never on the reported ones.
SCAN_POINTS = 8  # scanned values per side of each continuous characteristic
FINE_POINTS = 12  # per side: moves the surrogate may combine (gain curve interpolated)
MAX_SET = 3  # largest set of changes combined exhaustively by the surrogate
TRIPLE_AXES = 8  # sets of three only among the characteristics with the largest single gains
OPTIONS_PER_AXIS = (64, 24, 6)  # moves per characteristic combined in sets of 1, 2, 3
VERIFY_SETS_PER_SUGGESTION = 4  # surrogate combinations checked on the model: the best this many × k
CLOSEST_SETS = 4  # ... first the closest this many, then any (substantial moves only in sets of 2+)
RAY = (0.85, 1.0, 1.2, 1.5, 2.2)  # multiples of a combination's moves tried on the model
REFINE = (-0.04, -0.015, 0.005, 0.03, 0.08)  # relative offsets tried around the secant's boundary estimate
CANDIDATES_PER_SET = 3  # candidates kept per set of changed characteristics for the final choice
BALANCE_SETS = 2  # closest multi-change edits whose share among their characteristics is re-balanced
BALANCE_LEVELS = 4  # shares in steps of 1/this (pairs: 3 shares, triples: 3)
BALANCE_RADII = (0.5, 0.7, 0.85, 1.0)  # multiples of the edit's distance tried per share
SCORE_MARGIN = 1e-3  # points
CHANGE_COST = 0.3  # quantile units: one more change must save more distance than this
MIN_EXTRA = 0.1  # quantile units: a suggestion that adds less than this to another is no new idea
MODE_COST = 0.5  # distance of a major/minor flip, in quantile units
KEY_COST_PER_SEMITONE = 1 / 12  # a tritone (6 semitones, the farthest key) costs 0.5


@dataclass
class Suggestion:
    """One edited song. ``changes``: characteristic → (old, new) in Spotify units."""

    song: dict[str, float]
    score: float
    low: float
    high: float
    percentile: float
    changes: dict[str, tuple[float, float]]
    distance: float  # quantile units (see module docstring)
    reached: bool
    out_of_distribution: bool
    gain: float  # points over the original score

    def edits(self) -> list[str]:
        """Edits in the user's units, e.g. ``["tempo 98 BPM → 112 BPM", "energy 0.55 → 0.68"]``."""
        return [f"{BY_NAME[n].label.lower()} {BY_NAME[n].format(a)} → {BY_NAME[n].format(b)}"
                for n, (a, b) in self.changes.items()]


@dataclass
class WhatIfResult:
    """The original song's score, the target, and up to k suggestions (best first)."""

    song: dict[str, float]
    original_score: float
    original_low: float
    original_high: float
    target: float
    reached: bool
    suggestions: list[Suggestion] = field(default_factory=list)
    message: str = ""
    target_kind: str = "popularity"  # or "fit": TikTok fit in %, which has no interval (low/high NaN)

    def to_json(self) -> dict:
        """The command line's JSON contract."""
        return {"original_score": round(self.original_score, 3), "target": round(self.target, 3),
                "reached": self.reached,
                "suggestions": [{"song": s.song, "score": round(s.score, 3), "low": _rounded(s.low),
                                 "high": _rounded(s.high),
                                 "changes": {n: [a, b] for n, (a, b) in s.changes.items()}}
                                for s in self.suggestions]}

    def table(self) -> pd.DataFrame:
        """One row per suggestion: ``suggestion``, ``score``, ``low``, ``high``, ``gain``,
        ``n_changes``, ``edits`` (text), ``reached``, ``out_of_distribution``, ``distance``."""
        return pd.DataFrame([{
            "suggestion": i + 1, "score": s.score, "low": s.low, "high": s.high,
            "gain": s.gain, "n_changes": len(s.changes), "edits": ", ".join(s.edits()),
            "reached": s.reached, "out_of_distribution": s.out_of_distribution, "distance": s.distance,
        } for i, s in enumerate(self.suggestions)],
            columns=["suggestion", "score", "low", "high", "gain", "n_changes", "edits", "reached",
                     "out_of_distribution", "distance"])

    def comparison(self) -> pd.DataFrame:
        """Long table for a before/after chart: ``song`` ("original", "suggestion 1", …),
        ``score``, ``low``, ``high``."""
        rows = [{"song": "original", "score": self.original_score, "low": self.original_low,
                 "high": self.original_high}]
        rows += [{"song": f"suggestion {i + 1}", "score": s.score, "low": s.low, "high": s.high}
                 for i, s in enumerate(self.suggestions)]
        return pd.DataFrame(rows)


def _rounded(value: float) -> float | None:
    """A bound for JSON: 3 decimals, or null where there is none (TikTok fit has no interval)."""
    return None if np.isnan(value) else round(value, 3)


TARGET_KINDS = {"popularity": "points of popularity", "fit": "percentage points of TikTok fit"}


class _FitTarget:
    """The predictor seen through its TikTok fit (percent) instead of its popularity score: what
    the search scores (``raw_scores``), re-scores (``predict_columns``: fit, no interval, its
    catalogue percentile) and checks (``is_out_of_distribution``, the same as popularity's)."""

    def __init__(self, predictor: Predictor):
        if predictor.fit is None:
            raise ValueError("this model bundle has no TikTok-fit model: train it with --catalogue")
        self.predictor = predictor

    def raw_scores(self, X: np.ndarray) -> np.ndarray:
        return self.predictor.fit_percent(X)

    def predict_columns(self, X: np.ndarray) -> tuple[np.ndarray, ...]:
        fit = self.predictor.fit_percent(X)
        missing = np.full(len(fit), np.nan)
        return fit, missing, missing, self.predictor.fit_percentile(fit)

    def is_out_of_distribution(self, X: np.ndarray) -> np.ndarray:
        return self.predictor.is_out_of_distribution(X)

    @property
    def quantile_scale(self):
        return self.predictor.quantile_scale


def snap_columns(values: np.ndarray, columns: Sequence[int]) -> np.ndarray:
    """Round each column of ``values`` (n, len(columns)) to its characteristic's slider step and
    clip it into the valid range: ``Feature.snap`` vectorised (continuous characteristics)."""
    low, high, step = _SLIDER_LOW[columns], _SLIDER_HIGH[columns], _SLIDER_STEP[columns]
    clipped = np.clip(values, low, high)
    return np.clip(np.round(np.round((clipped - low) / step) * step + low, 6), low, high)


def _grid_box(j: int, lo: float, hi: float) -> tuple[float, float]:
    """The slider values of characteristic ``j`` inside [lo, hi] (may be empty: lo > hi)."""
    feature = FEATURES[j]
    first = feature.low + np.ceil(round((lo - feature.low) / feature.step, 6)) * feature.step
    last = feature.low + np.floor(round((hi - feature.low) / feature.step, 6)) * feature.step
    return feature.snap(first), feature.snap(last)


@dataclass
class _Problem:
    """Everything the search needs about one request (arrays in model order)."""

    scale: QuantileScale  # the predictor's quantile units
    x0: np.ndarray  # (12,) the original song
    target: float
    allowed: np.ndarray  # (12,) bool
    box_low: np.ndarray  # (12,) Spotify units, on the slider grid
    box_high: np.ndarray
    max_changes: int
    keys: list[float]  # allowed key values other than the original
    modes: list[float]
    k: int  # suggestions wanted
    u0: np.ndarray  # (10,) the original's continuous characteristics in quantile units
    u_low: np.ndarray  # (10,) the box's ends in quantile units (widened to hold the original)
    u_high: np.ndarray


def _problem(scale: QuantileScale, x0: np.ndarray, target: float, vary: Sequence[str],
             bounds: Mapping[str, tuple[float | None, float | None]], max_changes: int, k: int) -> _Problem:
    allowed = np.array([n in vary for n in FEATURE_NAMES])
    box_low, box_high = np.array(x0, float), np.array(x0, float)
    for j in CONTINUOUS:
        if not allowed[j]:
            continue
        lo, hi = bounds.get(FEATURE_NAMES[j], (None, None))
        lo = max(scale.low[j], FEATURES[j].low, -np.inf if lo is None else lo)
        hi = min(scale.high[j], FEATURES[j].high, np.inf if hi is None else hi)
        box_low[j], box_high[j] = _grid_box(j, lo, hi)
        if box_low[j] > box_high[j]:
            allowed[j] = False
    keys, modes = [], []
    if allowed[KEY_INDEX]:
        lo, hi = bounds.get("key", (None, None))
        keys = [float(k) for k in range(12) if k != x0[KEY_INDEX] and (lo is None or k >= lo) and (hi is None or k <= hi)]
    if allowed[MODE_INDEX]:
        modes = [m for m in (0.0, 1.0) if m != x0[MODE_INDEX]]
        lo, hi = bounds.get("mode", (None, None))
        modes = [m for m in modes if (lo is None or m >= lo) and (hi is None or m <= hi)]
    u0, u_low, u_high = scale.to_quantile(np.stack([x0, box_low, box_high]))
    return _Problem(scale, x0, target, allowed, box_low, box_high, max_changes, keys, modes, k, u0,
                    np.minimum(u_low, u0), np.maximum(u_high, u0))


@dataclass
class _Options:
    """Single changes the surrogate combines, one row each: which characteristic (model
    index), its move in quantile units (signed; 0 for key/mode), its new value for key/mode
    (NaN otherwise), its cost (its share of the distance) and its gain (points)."""

    axis: np.ndarray
    delta: np.ndarray
    value: np.ndarray
    cost: np.ndarray
    gain: np.ndarray


def _scan(predictor: Predictor, problem: _Problem) -> tuple[np.ndarray, np.ndarray, float]:
    """Score every single change on a line: ``SCAN_POINTS`` values per side of each allowed
    continuous characteristic (evenly spaced in quantile units up to the box's end, on the
    slider steps) and every allowed key and mode. Returns the (n, 12) songs, their (n,)
    scores and the original's score, all from one forward pass."""
    u0, u_low, u_high = problem.u0, problem.u_low, problem.u_high
    free = np.array([c for c, j in enumerate(CONTINUOUS) if problem.allowed[j]], int)
    fractions = np.arange(1, SCAN_POINTS + 1) / SCAN_POINTS
    cols = np.repeat(np.tile(free, 2), SCAN_POINTS)  # (2·f·P,)
    ends = np.repeat(np.concatenate([u_low[free], u_high[free]]), SCAN_POINTS)
    U = np.tile(u0, (len(cols), 1))
    U[np.arange(len(cols)), cols] = u0[cols] + np.tile(fractions, 2 * len(free)) * (ends - u0[cols])
    X = [problem.x0[None], _to_songs(problem, U)]
    for j, values in ((KEY_INDEX, problem.keys), (MODE_INDEX, problem.modes)):
        discrete = np.tile(problem.x0, (len(values), 1))
        discrete[:, j] = values
        X.append(discrete)
    X = np.concatenate(X)
    scores = _scores(predictor, X)
    changed = (X != problem.x0).any(1)
    X, first = np.unique(X[changed], axis=0, return_index=True)
    return X, scores[changed][first], float(scores[0])


def _options(problem: _Problem, X: np.ndarray, gains: np.ndarray) -> _Options:
    """The scanned single changes X (n, 12) with their gains (n,) → the surrogate's options:
    each continuous side's gain curve interpolated at ``FINE_POINTS`` moves, key and mode
    values as scanned; per characteristic only the efficient ones (each gains more than every
    cheaper one) that gain anything."""
    axis = np.argmax(X != problem.x0, axis=1)
    signed = np.zeros(X.shape)
    signed[:, list(CONTINUOUS)] = problem.scale.to_quantile(X) - problem.u0
    if np.isin(axis, (KEY_INDEX, MODE_INDEX)).any():  # key/mode: their fixed costs
        signed[:, [KEY_INDEX, MODE_INDEX]] = _moves(problem.scale, problem.x0, X)[:, [KEY_INDEX, MODE_INDEX]]
    delta = signed[np.arange(len(X)), axis]
    discrete = (axis == KEY_INDEX) | (axis == MODE_INDEX)
    parts = [(axis[discrete], np.zeros(discrete.sum()), X[discrete, axis[discrete]], delta[discrete],
              gains[discrete])]
    side = np.sign(delta) * ~discrete
    for j, sign in {(int(j), float(g)) for j, g in zip(axis[side != 0], side[side != 0])}:
        rows = np.flatnonzero((axis == j) & (side == sign))
        reach = np.abs(delta[rows])
        order = np.argsort(reach)
        fine = np.linspace(0, reach.max(), FINE_POINTS + 1)[1:]
        curve = np.interp(fine, np.concatenate([[0.0], reach[order]]), np.concatenate([[0.0], gains[rows][order]]))
        parts.append((np.full(len(fine), j), sign * fine, np.full(len(fine), np.nan), fine, curve))
    axis, delta, value, cost, gain = (np.concatenate(p) for p in zip(*parts))
    # efficient options: sorted by characteristic then cost, each gains more than all before it in
    # its characteristic (and more than nothing); the offset makes one running maximum serve all
    order = np.lexsort((-gain, cost, axis))
    offset = axis[order] * 1e4  # gains are points (|gain| ≤ 100)
    best_before = np.concatenate([[-np.inf], np.maximum.accumulate(gain[order] + offset)[:-1]])
    keep = order[gain[order] + offset > np.maximum(best_before, offset)]
    keep.sort()
    return _Options(axis[keep].astype(int), delta[keep], value[keep], cost[keep], gain[keep])


def _option_table(options: _Options, axes: np.ndarray, width: int) -> np.ndarray:
    """(len(axes), width) option indices per characteristic, cheapest first, evenly thinned
    to ``width``; -1 pads."""
    order = np.lexsort((options.cost, options.axis))
    sorted_axis = options.axis[order]
    starts, stops = np.searchsorted(sorted_axis, axes), np.searchsorted(sorted_axis, axes, "right")
    table = np.full((len(axes), width), -1)
    for row, (start, stop) in enumerate(zip(starts, stops)):
        rows = order[start:stop]
        if len(rows) > width:
            rows = rows[np.round(np.linspace(0, len(rows) - 1, width)).astype(int)]
        table[row, :len(rows)] = rows
    return table


def _combine(problem: _Problem, options: _Options, need: float, min_move: float = 0.0,
             first_size: int = 1) -> list[tuple[np.ndarray, bool, float]]:
    """Best combination of options per set of characteristics (sizes ``first_size`` to
    ``MAX_SET``, within ``max_changes``), by the additive surrogate (gains of single changes add
    up): the cheapest whose gains sum to ``need`` points, or, where none does, the one that gains
    most; in sets of 2+, only moves costing at least ``min_move``. Returns [(option indices,
    reaches need, surrogate cost)]. Sets of three only among the ``TRIPLE_AXES``
    characteristics with the largest single gains."""
    if min_move > 0:
        big = options.cost >= min_move
        options = _Options(*(getattr(options, f)[big] for f in ("axis", "delta", "value", "cost", "gain")))
        index = np.flatnonzero(big)
    else:
        index = np.arange(len(options.axis))
    axes = np.unique(options.axis)
    if not len(axes):
        return []
    top_gain = np.array([options.gain[options.axis == j].max() for j in axes])
    found: list[tuple[np.ndarray, bool, float]] = []
    for size in range(first_size, min(problem.max_changes, MAX_SET, len(axes)) + 1):
        pool = axes if size < 3 else axes[np.argsort(-top_gain, kind="stable")[:TRIPLE_AXES]]
        sets = np.array(list(itertools.combinations(range(len(pool)), size)))
        if not len(sets):
            continue
        table = _option_table(options, pool, OPTIONS_PER_AXIS[size - 1])
        gain_t = np.where(table >= 0, options.gain[table], -np.inf)
        cost_t = np.where(table >= 0, options.cost[table], np.inf)
        gain, cost = gain_t[sets[:, 0]], cost_t[sets[:, 0]]
        for position in range(1, size):  # outer sums: (sets, W, …, W)
            gain = gain[..., None] + gain_t[sets[:, position]].reshape((len(sets),) + (1,) * position + (-1,))
            cost = cost[..., None] + cost_t[sets[:, position]].reshape((len(sets),) + (1,) * position + (-1,))
        gain, cost = gain.reshape(len(sets), -1), cost.reshape(len(sets), -1)
        reached = gain >= need
        any_reached = reached.any(1)
        best = np.where(any_reached, np.where(reached, cost, np.inf).argmin(1), gain.argmax(1))
        picks = np.stack(np.unravel_index(best, (table.shape[1],) * size), 1)  # (sets, size)
        chosen = table[sets, picks]
        rows = np.arange(len(sets))
        ok = np.isfinite(gain[rows, best])
        found += [(index[chosen[i]], bool(any_reached[i]), float(cost[i, best[i]])) for i in np.flatnonzero(ok)]
    if problem.max_changes > MAX_SET and len(axes) > MAX_SET:  # beyond three: each top characteristic's best move
        tops = axes[np.argsort(-top_gain, kind="stable")[:problem.max_changes]]
        chosen = np.array([np.flatnonzero(options.axis == j)[options.gain[options.axis == j].argmax()] for j in tops])
        found.append((index[chosen], bool(options.gain[chosen].sum() >= need), float(options.cost[chosen].sum())))
    return found


def _apply(problem: _Problem, options: _Options, combos: list[np.ndarray], t: np.ndarray) -> np.ndarray:
    """(len(combos) · T, 12) songs: each combination's continuous moves scaled by each of the
    (len(combos), T) factors ``t`` (inside the box, on the slider steps), its key/mode values set."""
    u0, u_low, u_high = problem.u0, problem.u_low, problem.u_high
    n, levels = t.shape
    delta = np.zeros((n, len(CONTINUOUS)))
    discrete = np.tile(problem.x0[[KEY_INDEX, MODE_INDEX]], (n, 1))
    for i, chosen in enumerate(combos):
        for o in chosen:
            j = options.axis[o]
            if j in (KEY_INDEX, MODE_INDEX):
                discrete[i, 0 if j == KEY_INDEX else 1] = options.value[o]
            else:
                delta[i, CONTINUOUS.index(j)] = options.delta[o]
    U = np.clip(u0 + np.repeat(delta, levels, 0) * t.reshape(-1, 1), u_low, u_high)
    X = _to_songs(problem, U)
    X[:, [KEY_INDEX, MODE_INDEX]] = np.repeat(discrete, levels, 0)
    return X


def _bracket(scores: np.ndarray, t: np.ndarray, target: float, base: float) -> tuple[np.ndarray, ...]:
    """Along each of m rays tried at increasing multiples t (m, T) with these scores (m, T):
    whether any reached ``target`` (m,), the first that did (index, m), and where the boundary
    is estimated to lie (m,): the secant between the last short multiple (or 0, scored
    ``base``) and the first that reached."""
    good = scores >= target
    has, hit = good.any(1), good.argmax(1)
    rows = np.arange(len(t))
    before = np.maximum(hit - 1, 0)
    low = np.where(hit > 0, t[rows, before], 0.0)
    s_low = np.where(hit > 0, scores[rows, before], base)
    high, s_high = t[rows, hit], scores[rows, hit]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.nan_to_num(np.clip((target - s_low) / (s_high - s_low), 0.0, 1.0), nan=1.0)
    return has, hit, low + share * (high - low)


def _near(estimate: np.ndarray) -> np.ndarray:
    """(m, len(``REFINE``)) multiples around each estimated boundary multiple (m,)."""
    return estimate[:, None] * (1.0 + np.array(REFINE))


def _to_songs(problem: _Problem, u: np.ndarray) -> np.ndarray:
    """(S, 10) quantile units → (S, 12) songs on the slider grid inside the box; values that
    round back to the original are the original, exactly."""
    X = np.tile(problem.x0, (len(u), 1))
    cont = list(CONTINUOUS)
    raw = problem.scale.to_raw(u)
    new = snap_columns(raw, cont)
    # round away from the original: rounding back would undo part of the move the search found
    steps = _SLIDER_STEP[cont]
    moved = np.abs(raw - problem.x0[cont]) > 0.01 * steps  # not just the round trip's float error
    toward = moved & (np.abs(new - problem.x0[cont]) < np.abs(raw - problem.x0[cont]))
    new = np.where(toward, snap_columns(new + np.sign(raw - problem.x0[cont]) * steps, cont), new)
    new = np.clip(new, problem.box_low[cont], problem.box_high[cont])
    # a value that rounds to the original's own slider position is no change (no sub-step edits)
    x0_snapped = snap_columns(problem.x0[None, cont], cont)[0]
    keep = ~problem.allowed[cont] | ~moved | (new == x0_snapped)
    X[:, cont] = np.where(keep, problem.x0[cont], new)
    return X


def _simplex(size: int) -> np.ndarray:
    """(m, size) shares of an L1 move among ``size`` characteristics, all positive: the
    ``BALANCE_LEVELS``-grid of the simplex's interior."""
    n = BALANCE_LEVELS
    points = [p for p in itertools.product(range(1, n), repeat=size) if sum(p) == n]
    return np.array(points, float) / n


def _balance_rays(problem: _Problem, X: np.ndarray, distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The surrogate ignores interactions (energy and loudness together can do more than
    apart), so the ``BALANCE_SETS`` closest valid edits X (n, 12) of 2–3 continuous changes
    (``distance`` (n,) in quantile units) get other shares of their move among the same
    characteristics (``_simplex``). Returns the rays' unit directions (m, 10) (L1 length 1, in
    quantile units) and the distance of the edit each came from (m,)."""
    cont = np.array(CONTINUOUS)
    moved = X[:, cont] != problem.x0[cont]
    n_moved = moved.sum(1)
    plain = (X[:, [KEY_INDEX, MODE_INDEX]] == problem.x0[[KEY_INDEX, MODE_INDEX]]).all(1) & (n_moved >= 2) & (n_moved <= 3)
    rows = np.flatnonzero(plain)
    rows = rows[np.argsort(distance[rows], kind="stable")]
    _, first = np.unique(moved[rows], axis=0, return_index=True)  # the closest edit of each set
    rows = rows[np.sort(first)][:BALANCE_SETS]
    if not rows.size:
        return np.empty((0, len(cont))), np.empty(0)
    signs = np.sign(problem.scale.to_quantile(X[rows]) - problem.u0)
    directions, radii = [], []
    for r, sign in zip(rows, signs):
        cols = np.flatnonzero(moved[r])
        shares = _simplex(len(cols))
        d = np.zeros((len(shares), len(cont)))
        d[:, cols] = shares * sign[cols]
        directions.append(d)
        radii.append(np.full(len(shares), distance[r]))
    return np.concatenate(directions), np.concatenate(radii)


def _along(problem: _Problem, directions: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(m·T, 12) songs at the original + t (m, T) × each direction (m, 10), in quantile units."""
    U = np.clip(problem.u0 + np.repeat(directions, t.shape[1], 0) * t.reshape(-1, 1), problem.u_low, problem.u_high)
    return _to_songs(problem, U)


def _scores(predictor: Predictor, X: np.ndarray) -> np.ndarray:
    """(n, 12) → (n,) scores as the predictor reports them (clipped to 0–100)."""
    return np.clip(predictor.raw_scores(X), 0, 100)


def _moves(scale: QuantileScale, x0: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(n, 12) size of each characteristic's change in quantile units; key steps on the circle
    and a mode flip have fixed costs."""
    moves = np.zeros(X.shape)
    moves[:, list(CONTINUOUS)] = np.abs(scale.to_quantile(X) - scale.to_quantile(x0[None]))
    semitones = np.abs(X[:, KEY_INDEX] - x0[KEY_INDEX]) % 12
    moves[:, KEY_INDEX] = np.minimum(semitones, 12 - semitones) * KEY_COST_PER_SEMITONE
    moves[:, MODE_INDEX] = np.abs(X[:, MODE_INDEX] - x0[MODE_INDEX]) * MODE_COST
    return moves


def _distance(scale: QuantileScale, x0: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(n,) L1 distance in quantile units (sum of ``_moves``)."""
    return _moves(scale, x0, X).sum(1)


def _is_new_idea(changed: np.ndarray, moves: np.ndarray, picked: list[int], i: int) -> bool:
    """Row ``i`` changes a set of characteristics no picked row changes, and is not a picked
    row's set plus token extras (extra moves totalling under ``MIN_EXTRA`` quantile units)."""
    for p in picked:
        if (changed[i] == changed[p]).all():
            return False
        extra = changed[i] & ~changed[p]
        if not (changed[p] & ~changed[i]).any() and moves[i, extra].sum() < MIN_EXTRA:
            return False
    return True


def _choose(problem: _Problem, X: np.ndarray, score: np.ndarray, ood: np.ndarray, moves: np.ndarray,
            k: int) -> list[int]:
    """Row indices of up to k suggestions: valid first, then in distribution, then lowest
    distance + ``CHANGE_COST`` per change; each a new idea (``_is_new_idea``) before any
    near-repeat is allowed."""
    changed = X != problem.x0
    n_changes = changed.sum(1)
    distance = moves.sum(1)
    reached = score >= problem.target
    usable = (n_changes > 0) & (n_changes <= problem.max_changes)
    if reached.any():
        order = np.lexsort((distance + CHANGE_COST * n_changes, ood, ~reached))
    else:
        order = np.lexsort((distance, n_changes, -score))  # best effort: highest score first
    # once the target is reachable, only suggestions that reach it are offered
    order = [i for i in order if usable[i] and (reached[i] or not reached.any())]
    picked: list[int] = []
    seen_rows: set[bytes] = set()
    for repeats in (False, True):
        for i in order:
            if len(picked) == k or X[i].tobytes() in seen_rows:
                continue
            if repeats or _is_new_idea(changed, moves, picked, i):
                picked.append(i)
                seen_rows.add(X[i].tobytes())
    return picked


def search(predictor: Predictor, song: Mapping[str, float], *, target: float | None = None, gain: float | None = None,
           vary: Sequence[str] | None = None, bounds: Mapping[str, tuple[float | None, float | None]] | None = None,
           max_changes: int = 3, k: int = 4, target_kind: str = "popularity") -> WhatIfResult:
    """Up to ``k`` edits of ``song`` whose predicted score reaches ``target`` (or the current
    score + ``gain``) — the popularity score, or with ``target_kind="fit"`` the TikTok fit in
    percent (no interval: ``low``/``high`` NaN) — changing only characteristics in ``vary`` (default
    ``PRODUCER_CHOICES``), within ``bounds`` (name → (low, high) in Spotify units, either
    may be None) and the range of real tracks, at most ``max_changes`` at a time.

    When no edit reaches the target, ``reached`` is False and the suggestions are the best
    found (highest score first). Raises ``ValueError`` on bad input, naming it.
    """
    values, _ = parse_song(song)
    if target_kind not in TARGET_KINDS:
        raise ValueError(f"unknown target kind {target_kind!r}; choose one of {', '.join(TARGET_KINDS)}")
    if target_kind == "fit":
        predictor = _FitTarget(predictor)
    vary = list(PRODUCER_CHOICES if vary is None else vary)
    bounds = dict(bounds or {})
    _check_request(target, gain, vary, bounds, max_changes, k)
    x0 = np.array([values[n] for n in FEATURE_NAMES], float)
    score0, low0, high0, _ = (float(column[0]) for column in predictor.predict_columns(x0[None]))
    target = float(target) if target is not None else score0 + float(gain)
    result = WhatIfResult(values, score0, low0, high0, target, False, target_kind=target_kind)
    if score0 >= target:
        result.reached = True
        what = "has a TikTok fit of" if target_kind == "fit" else "scores"
        result.message = f"The song already {what} {score0:.1f}, at or above the target {target:.1f}."
        return result
    # the search aims a hair above the target: float32 sums differ in the last bits between
    # batch sizes, and a suggestion must still reach the target when re-scored on its own
    problem = _problem(predictor.quantile_scale, x0, target + SCORE_MARGIN, vary, bounds, max_changes, k)
    if not problem.allowed.any():
        result.message = "Nothing may change: allow at least one characteristic (or widen its bounds)."
        return result
    X, scores = _candidates(predictor, problem)
    return _finish(predictor, problem, X, scores, result, k)


def _candidates(predictor: Predictor, problem: _Problem) -> tuple[np.ndarray, np.ndarray]:
    """(n, 12) distinct candidate songs and their (n,) scores; when any reaches the target,
    only those that do. Four forward passes: the line scans; the surrogate's combinations
    along their rays (``RAY``); then, together, those rays refined inside their bracket and
    the re-balanced shares of the closest multi-change edits (``BALANCE_RADII``); last, those
    refined."""
    X_scan, s_scan, f0 = _scan(predictor, problem)
    if not len(X_scan):
        return problem.x0[None], np.array([f0])
    options = _options(problem, X_scan, s_scan - f0)
    combos = _combos_to_verify(problem, options, problem.target - f0)
    X, scores = [X_scan], [s_scan]
    refine_X = np.empty((0, N_FEATURES))
    if combos:
        t = np.tile(np.array(RAY), (len(combos), 1))
        ray_X = _apply(problem, options, combos, t)
        ray_s = _scores(predictor, ray_X).reshape(t.shape)
        has, hit, estimate = _bracket(ray_s, t, problem.target, f0)
        pick = np.where(has, hit, ray_s.argmax(1))
        X.append(ray_X.reshape(len(combos), t.shape[1], -1)[np.arange(len(combos)), pick])
        scores.append(ray_s[np.arange(len(combos)), pick])
        if has.any():
            refine_X = _apply(problem, options, [c for c, h in zip(combos, has) if h], _near(estimate[has]))
    X, scores = np.concatenate(X), np.concatenate(scores)
    valid = scores >= problem.target
    directions, radii = _balance_rays(problem, X[valid], _distance(problem.scale, problem.x0, X[valid]))
    t = radii[:, None] * np.array(BALANCE_RADII)
    both = _scores(predictor, np.concatenate([refine_X, _along(problem, directions, t)]))
    X, scores = np.concatenate([X, refine_X]), np.concatenate([scores, both[:len(refine_X)]])
    if len(directions):
        bal_s = both[len(refine_X):].reshape(t.shape)
        has, _, estimate = _bracket(bal_s, t, problem.target, f0)
        if has.any():
            fine_X = _along(problem, directions[has], _near(estimate[has]))
            X, scores = np.concatenate([X, fine_X]), np.concatenate([scores, _scores(predictor, fine_X)])
    if (scores >= problem.target).any():  # only valid edits will be offered: drop the rest now
        X, scores = X[scores >= problem.target], scores[scores >= problem.target]
    X, first = np.unique(X, axis=0, return_index=True)
    return _thin(problem, X, scores[first])


def _combos_to_verify(problem: _Problem, options: _Options, need: float) -> list[np.ndarray]:
    """Option-index arrays of the combinations to check on the model, best first: the
    ``CLOSEST_SETS`` closest, whatever their moves; then single changes and combinations whose
    every move is substantial (a token extra on another characteristic is no new idea); in all
    ``VERIFY_SETS_PER_SUGGESTION`` × k."""
    rank = lambda f: (not f[1], f[2] + CHANGE_COST * len(f[0]))  # noqa: E731
    closest = sorted(_combine(problem, options, need), key=rank)
    substantial = sorted(_combine(problem, options, need, MIN_EXTRA, 2), key=rank)
    combos = [f[0] for f in closest[:CLOSEST_SETS]]
    combos += [f[0] for f in sorted([f for f in closest[CLOSEST_SETS:] if len(f[0]) == 1] + substantial, key=rank)]
    return list({tuple(c): c for c in combos}.values())[:VERIFY_SETS_PER_SUGGESTION * problem.k]


def _thin(problem: _Problem, X: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep, per set of changed characteristics, the ``CANDIDATES_PER_SET`` closest valid
    candidates (or, when none is valid, the best-scoring): the rest would not be chosen."""
    _, group = np.unique(X != problem.x0, axis=0, return_inverse=True)
    key = _distance(problem.scale, problem.x0, X) if (scores >= problem.target).any() else -scores
    order = np.lexsort((key, group.ravel()))
    ranked = group.ravel()[order]
    rank = np.arange(len(order)) - np.searchsorted(ranked, ranked)
    keep = np.sort(order[rank < CANDIDATES_PER_SET])
    return X[keep], scores[keep]


def _finish(predictor: Predictor, problem: _Problem, X: np.ndarray, scores: np.ndarray, result: WhatIfResult,
            k: int) -> WhatIfResult:
    """Choose k candidates, re-score them with ``Predictor.predict_columns`` (``predict_array``'s
    numbers without its DataFrame): that score and its interval are what is reported and
    what decides ``reached``. Fills ``result``."""
    ood = predictor.is_out_of_distribution(X)
    moves = _moves(problem.scale, problem.x0, X)
    distance = moves.sum(1)
    chosen = _choose(problem, X, scores, ood, moves, k)
    songs = []
    for i in chosen:
        song = dict(result.song)
        for j in np.flatnonzero(X[i] != problem.x0):
            song[FEATURE_NAMES[j]] = FEATURES[j].snap(X[i, j])  # exactly the slider's value
        songs.append(song)
    columns = predictor.predict_columns(np.array([[s[n] for n in FEATURE_NAMES] for s in songs]).reshape(-1, N_FEATURES))
    for i, song, score, low, high, percentile in zip(chosen, songs, *columns):
        changes = {n: (result.song[n], song[n]) for n in FEATURE_NAMES if song[n] != result.song[n]}
        score = float(score)
        result.suggestions.append(Suggestion(song, score, float(low), float(high),
                                             float(percentile), changes, float(distance[i]),
                                             score >= result.target, bool(ood[i]), score - result.original_score))
    result.reached = any(s.reached for s in result.suggestions)
    what = "TikTok fit" if result.target_kind == "fit" else "score"
    if not result.suggestions:
        result.message = f"No allowed change raises the {what}: try allowing other characteristics or wider bounds."
    elif not result.reached:
        best = max(s.score for s in result.suggestions)
        result.message = (f"The target {result.target:.1f} could not be reached with these constraints; "
                          f"the best found {'has a TikTok fit of' if result.target_kind == 'fit' else 'scores'} "
                          f"{best:.1f} ({best - result.original_score:+.1f} points).")
    return result


def _check_request(target, gain, vary, bounds, max_changes, k) -> None:
    if (target is None) == (gain is None):
        raise ValueError("give either a target score or a gain, not both")
    if target is not None and not 0 <= float(target) <= 100:
        raise ValueError(f"target {target:g} must be between 0 and 100")
    if gain is not None and not np.isfinite(gain):
        raise ValueError("gain must be a finite number of points")
    unknown = [n for n in list(vary) + list(bounds) if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown characteristic(s) {', '.join(map(repr, unknown))}; "
                         f"expected {', '.join(FEATURE_NAMES)}")
    for name, (lo, hi) in bounds.items():
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"{name}: lower bound {lo:g} is above upper bound {hi:g}")
    if max_changes < 1:
        raise ValueError("max changes must be at least 1")
    if k < 1:
        raise ValueError("k (number of suggestions) must be at least 1")
