"""Sensitivity curves, the global view and pairwise interactions for the Explain page.

Every function returns a DataFrame (figures are drawn by ``virality.explain.plots``).

* ``sensitivity_curves``: the score as one characteristic sweeps its valid range, the
  others fixed at the song's values, with the predictor's interval.
* ``sample_typical_tracks``: synthetic typical tracks drawn from the training-distribution
  summary in the bundle (Gaussian copula; no training rows are shipped).
* ``global_importance``: mean |attribution| over the demo tracks and over that sample.
* ``pairwise_interactions`` (per song) and ``friedman_h`` (over typical tracks), in points: which
  pairs of characteristics act together rather than additively; ``pair_grid``: the score
  over a chosen pair.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.special import ndtr

from virality.explain.methods import METHODS, attribute, method_key, song_array
from virality.features import BY_NAME, CONTINUOUS, DISCRETE, FEATURE_NAMES, FEATURES, N_FEATURES, Feature
from virality.model.metadata import Distribution
from virality.model.prediction import Predictor

GLOBAL_SAMPLE_TRACKS = 300  # synthetic typical tracks the global importance averages over
H_SAMPLE_TRACKS = 50  # ... and Friedman's H (partial dependence is costlier: 50 keeps it ~1 s)


def sweep_values(feature: Feature, n_points: int = 41, extra: tuple[float, ...] = ()) -> np.ndarray:
    """Values of ``feature`` across its valid range: every key / both modes, else an even
    grid plus ``extra`` values (e.g. training quantiles, where most tracks are)."""
    if feature.kind == "key":
        return np.arange(12, dtype=float)
    if feature.kind == "mode":
        return np.array([0.0, 1.0])
    grid = np.linspace(feature.low, feature.high, n_points)
    extra = np.asarray(extra, float)
    return np.unique(np.concatenate([grid, extra[(extra >= feature.low) & (extra <= feature.high)]]))


def sensitivity_curves(predictor: Predictor, song: Mapping[str, float], n_points: int = 41,
                       target: str = "popularity") -> pd.DataFrame:
    """One curve per characteristic, one batched prediction of ``target`` (``"popularity"`` or ``"fit"``).

    Returns long format: ``feature``, ``value`` (Spotify units), ``score``, ``low``, ``high``
    (0–100 points; for fit, ``score`` is the fit in percent and ``low``/``high`` are NaN: it
    has no interval), ``current`` (the song's own value, bool). Sweeps cover the physical
    valid range plus the training quantiles at every 5 %.
    """
    quantiles = predictor.info.distribution.quantiles[::5]
    base = song_array(song)[0].astype(float)
    blocks, names = [], []
    for j, feature in enumerate(FEATURES):
        values = np.union1d(sweep_values(feature, n_points, tuple(quantiles[:, j])), [base[j]])
        rows = np.repeat(base[None, :], len(values), axis=0)
        rows[:, j] = values
        blocks.append(rows)
        names += [feature.name] * len(values)
    X = np.vstack(blocks)
    if target == "fit":
        score = predictor.fit_percent(X)
        low = high = np.full(len(X), np.nan)
    else:
        score, low, high, _ = predictor.predict_columns(X)
    column = np.array([FEATURE_NAMES.index(n) for n in names])
    return pd.DataFrame({"feature": names, "value": X[np.arange(len(X)), column], "score": score, "low": low,
                         "high": high,
                         "current": X[np.arange(len(X)), column] == base[column]})


def sample_typical_tracks(dist: Distribution, n: int = 400, seed: int = 0) -> pd.DataFrame:
    """``n`` synthetic tracks like the training tracks, from the bundle's summary of them
    (``predictor.info.distribution``).

    Gaussian copula: the 10 continuous characteristics get correlated normal scores
    (``normal_correlation``) mapped through each one's quantile table (101 levels, linear
    between them); key and mode are drawn independently from their quantiles. Returns a
    DataFrame (n, 12) in ``FEATURE_NAMES`` order, Spotify units.
    """
    quantiles, correlation = dist.quantiles, dist.normal_correlation
    levels = np.linspace(0.0, 1.0, len(quantiles))
    rng = np.random.default_rng(seed)
    out = np.empty((n, N_FEATURES))
    normal = rng.multivariate_normal(np.zeros(len(CONTINUOUS)), correlation, size=n, method="eigh")
    for column, j in enumerate(CONTINUOUS):
        out[:, j] = np.interp(ndtr(normal[:, column]), levels, quantiles[:, j])
    for j in DISCRETE:
        out[:, j] = quantiles[rng.integers(0, len(quantiles), n), j].round()
    return pd.DataFrame(out, columns=list(FEATURE_NAMES))


def global_importance(predictor: Predictor, demo: pd.DataFrame, sample: pd.DataFrame, method: str = "ig",
                      baseline: Mapping[str, float] | None = None, target: str = "popularity") -> pd.DataFrame:
    """Mean |attribution| (in ``target``'s points) per characteristic over the demo tracks and over a
    sample of typical tracks. Returns ``feature``, ``label``, ``demo tracks``,
    ``typical tracks (sample)``, sorted by the latter, largest first.

    The sampling methods use fewer samples per track than for one song
    (the method's ``global_samples``): averaging over hundreds of tracks smooths their noise."""
    result = pd.DataFrame({"feature": list(FEATURE_NAMES), "label": [f.label for f in FEATURES]})
    for name, frame in (("demo tracks", demo), ("typical tracks (sample)", sample)):
        attr, _ = attribute(predictor, frame[list(FEATURE_NAMES)].to_numpy(), baseline, method=method,
                            n_samples=METHODS[method_key(method)].global_samples, target=target)
        result[name] = np.abs(attr).mean(0)
    return result.sort_values("typical tracks (sample)", ascending=False, ignore_index=True)


def _raw(predictor: Predictor, X: np.ndarray, target: str = "popularity") -> np.ndarray:
    """(n, 12) → (n,) what the attributions explain: the unclipped popularity output, or the
    fit in percent."""
    if target == "fit":
        return predictor.fit_percent(X)
    return predictor.raw_scores(X.astype(np.float32))


def pairwise_interactions(predictor: Predictor, song: Mapping[str, float],
                          baseline: Mapping[str, float] | None = None, target: str = "popularity") -> pd.DataFrame:
    """Per song, in points of ``target``: for each pair (j, k), what moving both from the baseline to the
    song adds beyond moving each alone,
    f(x) − f(x with j at baseline) − f(x with k at baseline) + f(x with j and k at baseline).

    Zero for a model additive in j and k; exact, in the waterfall's units and 1 + 12 + 66
    predictions. Returns a symmetric (12, 12) DataFrame indexed by characteristic names
    (diagonal 0).
    """
    x = song_array(song)[0].astype(float)
    x0 = song_array(baseline if baseline is not None else predictor.typical_song)[0].astype(float)
    pairs = list(itertools.combinations(range(N_FEATURES), 2))
    rows = [x]
    for j in range(N_FEATURES):
        rows.append(np.where(np.arange(N_FEATURES) == j, x0, x))
    for j, k in pairs:
        rows.append(np.where(np.isin(np.arange(N_FEATURES), [j, k]), x0, x))
    f = _raw(predictor, np.array(rows), target)
    single = f[1:1 + N_FEATURES]
    matrix = np.zeros((N_FEATURES, N_FEATURES))
    for index, (j, k) in enumerate(pairs):
        matrix[j, k] = matrix[k, j] = f[0] - single[j] - single[k] + f[1 + N_FEATURES + index]
    return pd.DataFrame(matrix, index=list(FEATURE_NAMES), columns=list(FEATURE_NAMES))


def friedman_h(predictor: Predictor, sample: pd.DataFrame, target: str = "popularity") -> pd.DataFrame:
    """Friedman's unnormalised H per pair, in points of ``target``, over a sample of tracks (e.g.
    ``sample_typical_tracks``):

    H_jk = sqrt(mean_i [PD_jk(x_ij, x_ik) − PD_j(x_ij) − PD_k(x_ik)]²)

    with centred partial dependences estimated on the sample itself (n² predictions per
    pair: keep n ≈ 40–60). The typical size of the pair's non-additive joint effect. The
    unnormalised form is used because the normalised H² (divided by the joint effect's
    variance) flags pairs whose joint effect is itself negligible (e.g. key × liveness).
    Returns a symmetric (12, 12) DataFrame, diagonal 0.
    """
    X = sample[list(FEATURE_NAMES)].to_numpy(float)
    n = len(X)

    def partial_dependence(columns: list[int]) -> np.ndarray:
        grid = np.repeat(X[None, :, :], n, axis=0)  # grid[i, m] = sample m with columns from sample i
        grid[:, :, columns] = X[:, None, columns]
        pd_values = _raw(predictor, grid.reshape(-1, N_FEATURES), target).reshape(n, n).mean(1)
        return pd_values - pd_values.mean()

    single = [partial_dependence([j]) for j in range(N_FEATURES)]
    matrix = np.zeros((N_FEATURES, N_FEATURES))
    for j, k in itertools.combinations(range(N_FEATURES), 2):
        residual = partial_dependence([j, k]) - single[j] - single[k]
        matrix[j, k] = matrix[k, j] = float(np.sqrt(np.mean(residual**2)))
    return pd.DataFrame(matrix, index=list(FEATURE_NAMES), columns=list(FEATURE_NAMES))


def pair_grid(predictor: Predictor, song: Mapping[str, float], first: str, second: str,
              n_points: int = 25, target: str = "popularity") -> pd.DataFrame:
    """The score (0–100 points, or for ``target="fit"`` the fit, 0–100 %) over a grid of two
    characteristics, the others at the song's values.

    Returns long format with columns ``first``, ``second`` (values in Spotify units) and
    ``score``. The grid spans the range of real tracks (0.5–99.5 %) widened to include the
    song; key and mode use all their values.
    """
    if first == second or first not in BY_NAME or second not in BY_NAME:
        raise ValueError(f"choose two different characteristics, got {first!r} and {second!r}")
    dist = predictor.info.distribution
    x = song_array(song)[0].astype(float)
    axes = []
    for name in (first, second):
        j, feature = FEATURE_NAMES.index(name), BY_NAME[name]
        if feature.is_discrete:
            axes.append(sweep_values(feature))
        else:
            low, high = min(dist.low[j], x[j]), max(dist.high[j], x[j])
            axes.append(np.linspace(low, high, n_points))
    a, b = np.meshgrid(axes[0], axes[1], indexing="ij")
    rows = np.repeat(x[None, :], a.size, axis=0)
    rows[:, FEATURE_NAMES.index(first)] = a.ravel()
    rows[:, FEATURE_NAMES.index(second)] = b.ravel()
    score = predictor.target_scores(rows, target)
    return pd.DataFrame({"first": a.ravel(), "second": b.ravel(), "score": score})


def top_pairs(matrix: pd.DataFrame, k: int = 3) -> list[tuple[str, str, float]]:
    """The ``k`` pairs with the largest |value| in a symmetric interaction matrix."""
    names = list(matrix.index)
    values = matrix.to_numpy()
    pairs = [(names[j], names[m], float(values[j, m])) for j, m in itertools.combinations(range(len(names)), 2)]
    return sorted(pairs, key=lambda p: -abs(p[2]))[:k]


def interaction_sentence(matrix: pd.DataFrame, k: int = 2, minimum: float = 0.1, unit: str = "points") -> str:
    """Plain words naming the strongest pairs of a per-song interaction matrix (in ``unit``)."""
    strongest = [p for p in top_pairs(matrix, k) if abs(p[2]) >= minimum]
    if not strongest:
        return f"No pair of characteristics acts together by {minimum} {unit} or more for this song: " \
               "their effects simply add up."
    parts = [f"{BY_NAME[a].label.lower()} with {BY_NAME[b].label.lower()} "
             f"({'adds' if value > 0 else 'takes away'} {abs(value):.1f} {unit} beyond their separate effects)"
             for a, b, value in strongest]
    return "Strongest combinations for this song: " + "; ".join(parts) + "."
