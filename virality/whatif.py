"""What-if: small, plausible edits to a song that raise its predicted score to a target.

The search works in *quantile units* of real tracks: each continuous characteristic is
mapped to the share of real TikTok tracks below it (0–1, from
``metadata["distribution"]["quantiles"]``), so "+0.1" means "past another 10 % of real
tracks" for tempo and for energy alike. Key (circular, 12 pitch classes) and mode are
discrete and tried by enumeration.

Steps (all batched, one torch thread is enough):

1. **Starts**: one per set of continuous characteristics allowed to change together
   (every single one, every pair, then seeded random larger sets up to ``max_changes``).
2. **Projected gradient ascent** in quantile space: each start moves only its own set, by
   the smallest step that would reach the target if the model were linear there
   (capped), projected onto the box (range of real tracks ∩ the user's bounds). Sparsity
   comes from each start's own small set and from steps 4–5. Where autograd gives a flat or
   no gradient (a non-differentiable architecture), central differences stand in.
3. **Discrete repair**: slider steps are applied; key/mode alternatives (all 11 other keys,
   the other mode) are tried on the candidates that fell short and on their own.
4. **Greedy pruning**: a change is undone when the target is still reached without it.
5. **Pulling back**: each valid edit is scaled back toward the original as far as the target
   is still reached (all its changes together: two batched 8-level grids, the second
   refining the first); then a two-change edit is re-balanced (least-distance valid point of
   an 8 × 8 grid over both) and, in a 3+-change edit, the single change whose pull-back saves
   most distance is pulled back.
6. **Diverse choice and re-scoring**: valid first, then in distribution, then lowest
   distance + ``CHANGE_COST`` per change; each a new idea (a new set of changed
   characteristics, not another's set plus token extras) before any near-repeat. The k
   chosen are re-scored by ``Predictor.predict_array``: that score and its interval are
   reported and decide ``reached``; out-of-distribution ones are flagged.

Untouched characteristics are copied from the original song, bit for bit.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from virality.features import BY_NAME, FEATURE_NAMES, FEATURES, N_FEATURES, parse_song
from virality.predict import Predictor

KEY = FEATURE_NAMES.index("key")
MODE = FEATURE_NAMES.index("mode")
CONTINUOUS = tuple(i for i, f in enumerate(FEATURES) if not f.is_discrete)

# What a producer can change in the mix, master, arrangement or edit without writing a new song:
# groove/beat emphasis, intensity, master loudness, instrumentation (acoustic vs produced),
# tempo and length. Key, mode and valence are songwriting; speechiness and instrumentalness
# change what the vocal is; liveness is how it was recorded.
PRODUCER_CHOICES = ("danceability", "energy", "loudness", "acousticness", "tempo", "duration")

MAX_STARTS = 32
ASCENT_STEPS = 3
MAX_STEP = 0.3  # quantile units per ascent step and characteristic
PROBE = 0.05  # quantile units: finite-difference step where the gradient is flat or missing
OVERSHOOT = 0.3  # points aimed above the target during the ascent (the model is not linear)
SHRINK_LEVELS = 8  # grid levels per pass when pulling an edit back toward the original
SHRINK_PASSES = 2  # each pass refines the previous one's bracket: t found to 1/LEVELS**PASSES
TIGHTEN_LEVELS = 16  # fractions tried when pulling back one change of a multi-change edit
TIGHTEN_ROUNDS = 1
PAIR_LEVELS = 8  # grid points per characteristic when re-balancing a two-change edit
PAIR_REACH = 1.5  # ... up to this multiple of each change's move
PAIR_SETS_PER_SUGGESTION = 2  # pairs re-balanced: the closest this many × k
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

    def to_json(self) -> dict:
        """The command line's JSON contract."""
        return {"original_score": round(self.original_score, 3), "target": round(self.target, 3),
                "reached": self.reached,
                "suggestions": [{"song": s.song, "score": round(s.score, 3), "low": round(s.low, 3),
                                 "high": round(s.high, 3),
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


class QuantileScale:
    """Maps characteristics between Spotify units and quantile units of real tracks.

    Built from the 101 × 12 quantile table; tied quantiles (e.g. the many zeros of
    instrumentalness) collapse to one knot at their mean level, so the map is strictly
    increasing and invertible, like the model's own input transform.
    """

    def __init__(self, quantiles: np.ndarray, low: np.ndarray, high: np.ndarray):
        quantiles = np.asarray(quantiles, float)
        probs = np.linspace(0.0, 1.0, len(quantiles))
        self.knots, self.levels = [], []
        for j in CONTINUOUS:
            unique, inverse = np.unique(quantiles[:, j], return_inverse=True)
            levels = np.bincount(inverse, weights=probs) / np.bincount(inverse)
            if len(unique) == 1:
                unique, levels = np.array([unique[0], unique[0] + 1e-6]), np.array([0.0, 1.0])
            self.knots.append(unique)
            self.levels.append(levels)
        width = max(len(k) for k in self.knots)
        pad = [width - len(k) for k in self.knots]
        knots = [np.concatenate([k, k[-1] + 1e-6 * (1 + np.arange(p))]) for k, p in zip(self.knots, pad)]
        levels = [np.concatenate([lv, lv[-1] + 1e-9 * (1 + np.arange(p))]) for lv, p in zip(self.levels, pad)]
        self._knots_t = torch.tensor(np.array(knots), dtype=torch.float32)
        self._levels_t = torch.tensor(np.array(levels), dtype=torch.float32)
        self.low, self.high = np.asarray(low, float), np.asarray(high, float)

    def to_quantile(self, raw: np.ndarray) -> np.ndarray:
        """(n, 12) Spotify units → (n, 10) quantile units of the continuous characteristics."""
        raw = np.atleast_2d(raw)
        return np.stack([np.interp(raw[:, j], k, lv) for j, k, lv in zip(CONTINUOUS, self.knots, self.levels)], 1)

    def to_raw(self, u: np.ndarray) -> np.ndarray:
        """(n, 10) quantile units → (n, 10) Spotify units (continuous characteristics)."""
        u = np.atleast_2d(u)
        return np.stack([np.interp(u[:, c], lv, k) for c, (k, lv) in enumerate(zip(self.knots, self.levels))], 1)

    def to_raw_torch(self, u: torch.Tensor) -> torch.Tensor:
        """Differentiable ``to_raw``: (n, 10) → (n, 10)."""
        x = u.T.contiguous()
        upper = torch.searchsorted(self._levels_t, x.detach()).clamp(1, self._levels_t.shape[1] - 1)
        l0, l1 = self._levels_t.gather(1, upper - 1), self._levels_t.gather(1, upper)
        k0, k1 = self._knots_t.gather(1, upper - 1), self._knots_t.gather(1, upper)
        t = (x - l0) / (l1 - l0)
        return (k0 + t * (k1 - k0)).T


def quantile_scale(predictor: Predictor) -> QuantileScale:
    """The predictor's ``QuantileScale`` (built once per predictor)."""
    scale = getattr(predictor, "_whatif_scale", None)
    if scale is None:
        dist = predictor.metadata["distribution"]
        scale = QuantileScale(dist["quantiles"], dist["low"], dist["high"])
        predictor._whatif_scale = scale
    return scale


def snap_columns(values: np.ndarray, columns: Sequence[int]) -> np.ndarray:
    """Round each column of ``values`` (n, len(columns)) to its characteristic's slider step and
    clip it into the valid range: ``Feature.snap`` vectorised (continuous characteristics)."""
    low = np.array([FEATURES[j].low for j in columns])
    high = np.array([FEATURES[j].high for j in columns])
    step = np.array([FEATURES[j].step for j in columns])
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

    x0: np.ndarray  # (12,) the original song
    target: float
    allowed: np.ndarray  # (12,) bool
    box_low: np.ndarray  # (12,) Spotify units, on the slider grid
    box_high: np.ndarray
    max_changes: int
    keys: list[float]  # allowed key values other than the original
    modes: list[float]
    k: int  # suggestions wanted


def _problem(predictor: Predictor, x0: np.ndarray, target: float, vary: Sequence[str],
             bounds: Mapping[str, tuple[float | None, float | None]], max_changes: int, k: int) -> _Problem:
    scale = quantile_scale(predictor)
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
    if allowed[KEY]:
        lo, hi = bounds.get("key", (None, None))
        keys = [float(k) for k in range(12) if k != x0[KEY] and (lo is None or k >= lo) and (hi is None or k <= hi)]
    if allowed[MODE]:
        modes = [m for m in (0.0, 1.0) if m != x0[MODE]]
        lo, hi = bounds.get("mode", (None, None))
        modes = [m for m in modes if (lo is None or m >= lo) and (hi is None or m <= hi)]
    return _Problem(x0, target, allowed, box_low, box_high, max_changes, keys, modes, k)


def _start_masks(problem: _Problem, rng: np.random.Generator) -> np.ndarray:
    """(S, 10) bool: which continuous characteristics each start may move: every single one,
    every pair, then a seeded draw of larger sets (up to ``max_changes``), ``MAX_STARTS`` in all."""
    free = [c for c, j in enumerate(CONTINUOUS) if problem.allowed[j]]
    size_cap = min(problem.max_changes, len(free))
    sets: list[tuple[int, ...]] = []
    for size in range(1, size_cap + 1):
        options = list(itertools.combinations(free, size))
        room = MAX_STARTS - len(sets)
        if len(options) > room:
            options = [options[i] for i in sorted(rng.choice(len(options), size=max(room, 0), replace=False))]
        sets += options
    masks = np.zeros((len(sets), len(CONTINUOUS)), bool)
    for row, chosen in enumerate(sets):
        masks[row, list(chosen)] = True
    return masks


def _ascend(predictor: Predictor, problem: _Problem, masks: np.ndarray) -> np.ndarray:
    """Projected gradient ascent in quantile units → (S, 10) end points."""
    scale = quantile_scale(predictor)
    u0 = scale.to_quantile(problem.x0[None])[0]
    u_low = scale.to_quantile(problem.box_low[None])[0]
    u_high = scale.to_quantile(problem.box_high[None])[0]
    u_low, u_high = np.minimum(u_low, u0), np.maximum(u_high, u0)
    mask = torch.from_numpy(masks.astype(np.float32))
    u = torch.tensor(np.tile(u0, (len(masks), 1)), dtype=torch.float32)
    lo_t, hi_t = torch.tensor(u_low, dtype=torch.float32), torch.tensor(u_high, dtype=torch.float32)
    base = torch.tensor(np.tile(problem.x0, (len(masks), 1)), dtype=torch.float32)
    aim = problem.target + OVERSHOOT
    active = torch.arange(len(masks))
    for step_number in range(ASCENT_STEPS):
        # only starts still moving: the others reached the aim or are stuck (flat model, at bounds)
        part = u[active]
        if step_number == 0:  # every start is at the original: one gradient serves them all
            score, grad = _gradient(predictor, scale, base[:1], part[:1], mask.amax(0, keepdim=True))
            score, grad = score.expand(len(part)), grad.expand(len(part), -1)
        else:
            score, grad = _gradient(predictor, scale, base[active], part, mask[active])
        with torch.no_grad():
            grad = grad * mask[active]
            need = (aim - score).clamp(min=0.0)
            norm2 = (grad * grad).sum(1).clamp(min=1e-9)
            step = (grad * (need / norm2)[:, None]).clamp(-MAX_STEP, MAX_STEP)
            moved = torch.minimum(torch.maximum(part.detach() + step, lo_t), hi_t)
            still = (moved - part).abs().amax(1) >= 1e-4
            u[active] = moved
            active = active[still]
            if not len(active):
                break
    return u.numpy().astype(float)


def _gradient(predictor: Predictor, scale: QuantileScale, base: torch.Tensor, u: torch.Tensor,
              mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores (n,) and their gradient (n, 10) w.r.t. quantile units at ``u`` (n, 10) for songs
    ``base`` (n, 12). Rows where autograd gives nothing usable (a flat stretch, a model that is
    not differentiable) get central differences over their allowed characteristics instead."""
    cont = list(CONTINUOUS)
    part = u.clone().requires_grad_(True)
    raw = base.clone()
    raw[:, cont] = scale.to_raw_torch(part)
    try:
        score = predictor.model(raw)
        (grad,) = torch.autograd.grad(score.sum(), part)
    except RuntimeError:  # e.g. a model computed outside autograd
        with torch.no_grad():
            score, grad = predictor.model(raw), torch.zeros_like(u)
    score, grad = score.detach(), torch.nan_to_num(grad * mask)
    flat = (grad.abs().amax(1) == 0) & (mask.sum(1) > 0)
    if bool(flat.any()):
        grad[flat] = _finite_difference(predictor, scale, base[flat], u[flat], mask[flat])
    return score, grad


def _finite_difference(predictor: Predictor, scale: QuantileScale, base: torch.Tensor, u: torch.Tensor,
                       mask: torch.Tensor) -> torch.Tensor:
    """(n, 10) central differences of the score over ±``PROBE`` quantile units (allowed columns)."""
    n, m = u.shape
    eye = torch.eye(m) * PROBE
    probes = torch.cat([(u[:, None, :] + eye).reshape(-1, m), (u[:, None, :] - eye).reshape(-1, m)])
    X = base[:, None, :].expand(n, m, base.shape[1]).reshape(-1, base.shape[1]).repeat(2, 1).clone()
    with torch.no_grad():
        X[:, list(CONTINUOUS)] = scale.to_raw_torch(probes.clamp(0.0, 1.0))
    scores = torch.from_numpy(predictor.raw_scores(X.numpy()).astype(np.float32)).reshape(2, n, m)
    return (scores[0] - scores[1]) / (2 * PROBE) * mask


def _to_songs(predictor: Predictor, problem: _Problem, u: np.ndarray) -> np.ndarray:
    """(S, 10) quantile units → (S, 12) songs on the slider grid inside the box; values that
    round back to the original are the original, exactly."""
    scale = quantile_scale(predictor)
    X = np.tile(problem.x0, (len(u), 1))
    cont = list(CONTINUOUS)
    raw = scale.to_raw(u)
    new = snap_columns(raw, cont)
    # round away from the original: rounding back would undo part of the move the ascent found
    steps = np.array([FEATURES[j].step for j in cont])
    moved = np.abs(raw - problem.x0[cont]) > 0.01 * steps  # not just the round trip's float error
    toward = moved & (np.abs(new - problem.x0[cont]) < np.abs(raw - problem.x0[cont]))
    new = np.where(toward, snap_columns(new + np.sign(raw - problem.x0[cont]) * steps, cont), new)
    new = np.clip(new, problem.box_low[cont], problem.box_high[cont])
    # a value that rounds to the original's own slider position is no change (no sub-step edits)
    x0_snapped = snap_columns(problem.x0[None, cont], cont)[0]
    keep = ~problem.allowed[cont] | (new == x0_snapped)
    X[:, cont] = np.where(keep, problem.x0[cont], new)
    return X


def _with_discrete(problem: _Problem, X: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Extra candidates: key/mode alternatives on candidates that fell short (within the
    change budget), and each alternative on its own."""
    alternatives = [(KEY, k) for k in problem.keys] + [(MODE, m) for m in problem.modes]
    if not alternatives:
        return X
    extra = [X]
    short = X[(scores < problem.target) & ((X != problem.x0).sum(1) < problem.max_changes)]
    for j, value in alternatives:
        for rows in (short, problem.x0[None]):
            variant = rows.copy()
            variant[:, j] = value
            extra.append(variant)
    if problem.keys and problem.modes and problem.max_changes >= 2:
        both = np.tile(problem.x0, (len(problem.keys) * len(problem.modes), 1))
        both[:, [KEY, MODE]] = [(k, m) for k in problem.keys for m in problem.modes]
        extra.append(both)
    return np.concatenate(extra)


def _scores(predictor: Predictor, X: np.ndarray) -> np.ndarray:
    """(n, 12) → (n,) scores as the predictor reports them (clipped to 0–100)."""
    return np.clip(predictor.raw_scores(X), 0, 100)


def _prune(predictor: Predictor, problem: _Problem, X: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedily undo changes: per round, undo the change whose removal keeps the score
    highest, if the candidate then still reaches the target (or, short of it, loses nothing)."""
    X, scores = X.copy(), scores.copy()
    for _ in range(N_FEATURES):
        changed = X != problem.x0
        rows, cols = np.nonzero(changed)
        if not len(rows):
            break
        trial = X[rows].copy()
        trial[np.arange(len(rows)), cols] = problem.x0[cols]
        trial_scores = _scores(predictor, trial)
        ok = np.where(scores[rows] >= problem.target, trial_scores >= problem.target,
                      trial_scores >= scores[rows])
        best = np.full(len(X), -np.inf)
        pick = np.full(len(X), -1)
        for i in np.flatnonzero(ok):
            if trial_scores[i] > best[rows[i]]:
                best[rows[i]], pick[rows[i]] = trial_scores[i], i
        if (pick < 0).all():
            break
        for r in np.flatnonzero(pick >= 0):
            X[r], scores[r] = trial[pick[r]], trial_scores[pick[r]]
    return X, scores


def _pull_back(predictor: Predictor, problem: _Problem, X: np.ndarray, scores: np.ndarray,
               moving: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move each song's ``moving`` continuous characteristics ((n, 10) bool) back toward the
    original by the same fraction t of their edit (in quantile units), as far as the target is
    still reached: ``SHRINK_PASSES`` batched grids of ``SHRINK_LEVELS`` values of t, each
    refining the last one's bracket."""
    scale = quantile_scale(predictor)
    cont = list(CONTINUOUS)
    u0 = scale.to_quantile(problem.x0[None])[0]
    u1 = scale.to_quantile(X)
    n = len(X)
    best_t = np.ones(n)
    best_X, best_scores = X.copy(), scores.copy()
    lo = np.zeros(n)
    for _ in range(SHRINK_PASSES):
        width = (best_t - lo) / SHRINK_LEVELS
        t = lo[:, None] + width[:, None] * np.arange(1, SHRINK_LEVELS + 1)  # (n, L), ends at best_t
        u = u0 + t.reshape(-1)[:, None] * (np.repeat(u1, SHRINK_LEVELS, 0) - u0)
        trial = np.repeat(X, SHRINK_LEVELS, 0)
        moved = _to_songs(predictor, problem, u)[:, cont]
        trial[:, cont] = np.where(np.repeat(moving, SHRINK_LEVELS, 0), moved, trial[:, cont])
        trial_scores = _scores(predictor, trial).reshape(n, SHRINK_LEVELS)
        good = trial_scores >= problem.target
        first = np.where(good.any(1), good.argmax(1), SHRINK_LEVELS - 1)
        rows = np.arange(n)
        found = good[rows, first]
        pick = rows * SHRINK_LEVELS + first
        best_X[found], best_scores[found] = trial[pick[found]], trial_scores[rows, first][found]
        lo = np.where(found, t[rows, first] - width, lo)
        best_t = np.where(found, t[rows, first], best_t)
    return best_X, best_scores


def _tighten(predictor: Predictor, problem: _Problem, X: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One batched pass over edits of 3+ changes: try pulling each change alone back toward the
    original (``TIGHTEN_LEVELS`` fractions of its move, in quantile units) and keep, per song, the
    valid pull that saves the most distance."""
    scale = quantile_scale(predictor)
    cont = np.array(CONTINUOUS)
    changed = X[:, cont] != problem.x0[cont]
    rows, cols = np.nonzero(changed & (changed.sum(1) > 2)[:, None])  # pairs: see _pair_grid
    if not rows.size:
        return X, scores
    u0 = scale.to_quantile(problem.x0[None])[0]
    u = scale.to_quantile(X)
    keep = np.arange(1, TIGHTEN_LEVELS) / TIGHTEN_LEVELS  # share of the move kept
    r, c = np.repeat(rows, len(keep)), np.repeat(cols, len(keep))
    t = np.tile(keep, len(rows))
    trial_u = u[r].copy()
    trial_u[np.arange(len(r)), c] = u0[c] + t * (u[r, c] - u0[c])
    trial = X[r].copy()
    trial[np.arange(len(r)), cont[c]] = _to_songs(predictor, problem, trial_u)[np.arange(len(r)), cont[c]]
    trial_scores = _scores(predictor, trial)
    saving = np.abs(u[r, c] - u0[c]) - np.abs(scale.to_quantile(trial)[np.arange(len(r)), c] - u0[c])
    saving[trial_scores < problem.target] = -np.inf
    X, scores = X.copy(), scores.copy()
    for row in np.unique(r):
        options = np.flatnonzero(r == row)
        best = options[np.argmax(saving[options])]
        if saving[best] > 0:
            X[row], scores[row] = trial[best], trial_scores[best]
    return X, scores


def _pair_grid(predictor: Predictor, problem: _Problem, X: np.ndarray, scores: np.ndarray,
               limit: int) -> tuple[np.ndarray, np.ndarray]:
    """For edits of exactly two continuous changes: one batched grid over both (``PAIR_LEVELS``²
    points from the original up to ``PAIR_REACH`` × each move, in quantile units, inside the
    box); keep the valid point of least distance. Finds the trade between the two that the
    gradient's direction misses."""
    scale = quantile_scale(predictor)
    cont = np.array(CONTINUOUS)
    changed = X[:, cont] != problem.x0[cont]
    rows = np.flatnonzero((changed.sum(1) == 2) & (X[:, [KEY, MODE]] == problem.x0[[KEY, MODE]]).all(1))
    if not rows.size:
        return X, scores
    # one row per pair of characteristics (the grid covers what its other rows would find), and
    # only the pairs closest now: the others would not be chosen anyway
    _, first = np.unique(changed[rows], axis=0, return_index=True)
    rows = rows[np.sort(first)]
    rows = rows[np.argsort(_distance(predictor, problem.x0, X[rows]), kind="stable")[:limit]]
    u0 = scale.to_quantile(problem.x0[None])[0]
    u_low = np.minimum(scale.to_quantile(problem.box_low[None])[0], u0)
    u_high = np.maximum(scale.to_quantile(problem.box_high[None])[0], u0)
    u = scale.to_quantile(X[rows])
    cols = np.array([np.flatnonzero(changed[r]) for r in rows])  # (m, 2)
    fractions = np.linspace(0, PAIR_REACH, PAIR_LEVELS + 1)[1:]
    fa, fb = (g.ravel() for g in np.meshgrid(fractions, fractions))
    m, g = len(rows), len(fa)
    trial_u = np.repeat(u, g, 0)
    idx = np.arange(m * g)
    for c, f in ((cols[:, 0], fa), (cols[:, 1], fb)):
        cc = np.repeat(c, g)
        moved = u0[cc] + np.tile(f, m) * (trial_u[idx, cc] - u0[cc])
        trial_u[idx, cc] = np.clip(moved, u_low[cc], u_high[cc])
    trial = np.repeat(X[rows], g, 0)
    songs = _to_songs(predictor, problem, trial_u)
    for c in (cols[:, 0], cols[:, 1]):
        cc = cont[np.repeat(c, g)]
        trial[idx, cc] = songs[idx, cc]
    trial_scores = _scores(predictor, trial)
    cost = np.abs(trial_u - u0).sum(1)  # before snapping: close enough to rank, cheaper
    cost[(trial_scores < problem.target) | ((trial != problem.x0).sum(1) < 2)] = np.inf
    best = cost.reshape(m, g).argmin(1)
    X, scores = X.copy(), scores.copy()
    current = np.abs(u - u0).sum(1)
    for i, r in enumerate(rows):
        k = i * g + best[i]
        if cost[k] < current[i]:
            X[r], scores[r] = trial[k], trial_scores[k]
    return X, scores


def _shrink(predictor: Predictor, problem: _Problem, X: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pull each valid candidate's edit back toward the original while it still reaches the
    target: first all its changes together, then re-balance two-change edits on a grid and pull
    single changes of larger edits back."""
    valid = scores >= problem.target
    if not valid.any():
        return X, scores
    cont = list(CONTINUOUS)
    Xv = X[valid]
    Xv, sv = _pull_back(predictor, problem, Xv, scores[valid], Xv[:, cont] != problem.x0[cont])
    for _ in range(TIGHTEN_ROUNDS):
        Xv, sv = _tighten(predictor, problem, Xv, sv)
    Xv, sv = _pair_grid(predictor, problem, Xv, sv, limit=PAIR_SETS_PER_SUGGESTION * problem.k)
    X, scores = X.copy(), scores.copy()
    X[valid], scores[valid] = Xv, sv
    return X, scores


def _moves(predictor: Predictor, x0: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(n, 12) size of each characteristic's change in quantile units; key steps on the circle
    and a mode flip have fixed costs."""
    scale = quantile_scale(predictor)
    moves = np.zeros(X.shape)
    moves[:, list(CONTINUOUS)] = np.abs(scale.to_quantile(X) - scale.to_quantile(x0[None]))
    semitones = np.abs(X[:, KEY] - x0[KEY]) % 12
    moves[:, KEY] = np.minimum(semitones, 12 - semitones) * KEY_COST_PER_SEMITONE
    moves[:, MODE] = np.abs(X[:, MODE] - x0[MODE]) * MODE_COST
    return moves


def _distance(predictor: Predictor, x0: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(n,) L1 distance in quantile units (sum of ``_moves``)."""
    return _moves(predictor, x0, X).sum(1)


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
        order = np.lexsort((distance, n_changes, -np.round(score, 1)))
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
           max_changes: int = 3, k: int = 4, seed: int = 0) -> WhatIfResult:
    """Up to ``k`` edits of ``song`` whose predicted score reaches ``target`` (or the current
    score + ``gain``), changing only characteristics in ``vary`` (default
    ``PRODUCER_CHOICES``), within ``bounds`` (name → (low, high) in Spotify units, either
    may be None) and the range of real tracks, at most ``max_changes`` at a time.

    When no edit reaches the target, ``reached`` is False and the suggestions are the best
    found (highest score first). Raises ``ValueError`` on bad input, naming it.
    """
    values, _ = parse_song(song)
    vary = list(PRODUCER_CHOICES if vary is None else vary)
    bounds = dict(bounds or {})
    _check_request(target, gain, vary, bounds, max_changes, k)
    x0 = np.array([values[n] for n in FEATURE_NAMES], float)
    before = predictor.predict_array(x0[None]).iloc[0]
    score0 = float(before["predicted_popularity"])
    target = float(target) if target is not None else score0 + float(gain)
    result = WhatIfResult(values, score0, float(before["low"]), float(before["high"]), target, False)
    if score0 >= target:
        result.reached = True
        result.message = f"The song already scores {score0:.1f}, at or above the target {target:.1f}."
        return result
    # the search aims a hair above the target: float32 sums differ in the last bits between
    # batch sizes, and a suggestion must still reach the target when re-scored on its own
    problem = _problem(predictor, x0, target + SCORE_MARGIN, vary, bounds, max_changes, k)
    if not problem.allowed.any():
        result.message = "Nothing may change: allow at least one characteristic (or widen its bounds)."
        return result
    X, scores = _candidates(predictor, problem, np.random.default_rng(seed))
    return _finish(predictor, problem, X, scores, result, k)


def _candidates(predictor: Predictor, problem: _Problem, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, 12) distinct candidate songs after ascent, discrete repair, pruning and shrinking,
    and their (n,) scores."""
    masks = _start_masks(problem, rng)
    X = _to_songs(predictor, problem, _ascend(predictor, problem, masks)) if len(masks) else problem.x0[None]
    X = np.unique(X, axis=0)
    scores = _scores(predictor, X)
    if problem.keys or problem.modes:
        X = np.unique(_with_discrete(problem, X, scores), axis=0)
        scores = _scores(predictor, X)
    if (scores >= problem.target).any():  # only valid edits will be offered: drop the rest now
        X, scores = X[scores >= problem.target], scores[scores >= problem.target]
    X, scores = _prune(predictor, problem, X, scores)
    X, scores = _shrink(predictor, problem, X, scores)
    X, first = np.unique(X, axis=0, return_index=True)
    return X, scores[first]


def _finish(predictor: Predictor, problem: _Problem, X: np.ndarray, scores: np.ndarray, result: WhatIfResult,
            k: int) -> WhatIfResult:
    """Choose k candidates, re-score them with ``Predictor.predict_array`` (that score and its
    interval are what is reported and what decides ``reached``) and fill ``result``."""
    ood = predictor.is_out_of_distribution(X)
    moves = _moves(predictor, problem.x0, X)
    distance = moves.sum(1)
    chosen = _choose(problem, X, scores, ood, moves, k)
    songs = []
    for i in chosen:
        song = dict(result.song)
        for j in np.flatnonzero(X[i] != problem.x0):
            song[FEATURE_NAMES[j]] = FEATURES[j].snap(X[i, j])  # exactly the slider's value
        songs.append(song)
    table = predictor.predict_array(np.array([[s[n] for n in FEATURE_NAMES] for s in songs]).reshape(-1, N_FEATURES))
    for i, song, (_, row) in zip(chosen, songs, table.iterrows()):
        changes = {n: (result.song[n], song[n]) for n in FEATURE_NAMES if song[n] != result.song[n]}
        score = float(row["predicted_popularity"])
        result.suggestions.append(Suggestion(song, score, float(row["low"]), float(row["high"]),
                                             float(row["percentile"]), changes, float(distance[i]),
                                             score >= result.target, bool(ood[i]), score - result.original_score))
    result.reached = any(s.reached for s in result.suggestions)
    if not result.suggestions:
        result.message = "No allowed change raises the score: try allowing other characteristics or wider bounds."
    elif not result.reached:
        best = max(s.score for s in result.suggestions)
        result.message = (f"The target {result.target:.1f} could not be reached with these constraints; "
                          f"the best found scores {best:.1f} ({best - result.original_score:+.1f} points).")
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


def run_cli(args: argparse.Namespace) -> int:
    """``python -m virality whatif``: print suggestions (or JSON); exit 0 when the target is
    reached, 1 when only a best effort was found."""
    from virality.cli import load_predictor_for_cli, print_json
    from virality.features import load_song_arg

    song, filled = load_song_arg(args.song)
    if filled:
        print(f"note: {', '.join(filled)} missing, using the typical value", file=sys.stderr)
    vary = [v.strip() for v in args.vary.split(",") if v.strip()] if args.vary else None
    predictor = load_predictor_for_cli(args)
    result = search(predictor, song, target=args.target, gain=args.gain, vary=vary,
                    max_changes=args.max_changes, k=args.k)
    if args.json:
        print_json(result.to_json())
    else:
        _print_text(result)
    return 0 if result.reached else 1


def _print_text(result: WhatIfResult) -> None:
    print(f"current score {result.original_score:.1f} "
          f"(interval {result.original_low:.0f}–{result.original_high:.0f}); target {result.target:.1f}")
    if result.message:
        print(result.message)
    for i, s in enumerate(result.suggestions, 1):
        flags = ("" if s.reached else "  [short of target]") + ("  [unusual for real tracks]" if s.out_of_distribution else "")
        print(f"{i}. {s.score:.1f} ({s.score - result.original_score:+.1f}; interval {s.low:.0f}–{s.high:.0f}): "
              f"{', '.join(s.edits())}{flags}")
