"""What the additive network learned: one shape per characteristic, one surface per pair.

The additive network (``virality.models.AdditiveNetwork``) scores a song as a sum of terms,
one per characteristic and one per selected pair. Each term is read here on a grid of real
values (from the bundle's quantile table: no rows of data needed), centred so that the
typical real track's term is 0, and converted to popularity points. Plain-words sentences
say what each shape or surface means.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from virality.bundle import ARTIFACTS_DIR
from virality.features import BY_NAME, FEATURE_NAMES
from virality.predict import Predictor, load_predictor

ADDITIVE_DIR = ARTIFACTS_DIR / "additive"
GRID_LEVELS = np.arange(2, 99)  # percentiles of real tracks the shapes are drawn over
SURFACE_LEVELS = np.linspace(5, 95, 19)


def load_additive(path: str | Path = ADDITIVE_DIR) -> Predictor:
    """The additive network bundled beside the shipped model (or the shipped one, if additive)."""
    predictor = load_predictor(path)
    if predictor.metadata["model"]["arch"] != "additive":
        raise ValueError(f"the model in {path} is {predictor.metadata['model']['arch']}, not the additive network")
    return predictor


def _grid_values(predictor: Predictor, name: str, levels: np.ndarray) -> np.ndarray:
    """Values of characteristic ``name`` at percentiles ``levels`` of real tracks (unique)."""
    j = FEATURE_NAMES.index(name)
    if BY_NAME[name].is_discrete:
        low, high = (0, 11) if name == "key" else (0, 1)
        return np.arange(low, high + 1, dtype=float)
    table = np.asarray(predictor.metadata["distribution"]["quantiles"])[:, j]
    return np.unique(np.interp(levels, np.arange(101), table))


def _terms(predictor: Predictor, X: np.ndarray) -> np.ndarray:
    """(n, 12) raw → (n, 12 + n_pairs) terms in popularity points."""
    model = predictor.model
    with torch.inference_mode():
        z = model.transform(torch.as_tensor(X, dtype=torch.float32))
        return model.backbone.terms(z).numpy().astype(float) * float(model.target_std)


def _reference_rows(predictor: Predictor) -> np.ndarray:
    """(101, 12) synthetic tracks: each characteristic at its own 0…100 % quantiles, columns
    shuffled independently (seeded), a stand-in for real tracks when centring terms."""
    table = np.asarray(predictor.metadata["distribution"]["quantiles"], float)
    rng = np.random.default_rng(0)
    return np.column_stack([rng.permutation(table[:, j]) for j in range(table.shape[1])])


def _centres(predictor: Predictor) -> np.ndarray:
    """Each term's mean over the reference tracks: subtracting it makes "typical" = 0."""
    return _terms(predictor, _reference_rows(predictor)).mean(0)


def shape_functions(predictor: Predictor) -> pd.DataFrame:
    """One row per (characteristic, grid value): ``characteristic``, ``value`` (Spotify
    units), ``points`` (the term, centred: + means above a typical track)."""
    centres = _centres(predictor)
    typical = np.array([predictor.typical_song[n] for n in FEATURE_NAMES])
    frames = []
    for j, name in enumerate(FEATURE_NAMES):
        values = _grid_values(predictor, name, GRID_LEVELS)
        X = np.tile(typical, (len(values), 1))
        X[:, j] = values
        frames.append(pd.DataFrame({"characteristic": name, "value": values,
                                    "points": _terms(predictor, X)[:, j] - centres[j]}))
    return pd.concat(frames, ignore_index=True)


def pairs(predictor: Predictor) -> list[tuple[str, str]]:
    """The characteristic pairs the network models jointly, in term order."""
    return [(FEATURE_NAMES[a], FEATURE_NAMES[b]) for a, b in predictor.model.arch_kwargs.get("pairs", [])]


def interaction_surface(predictor: Predictor, pair: tuple[str, str]) -> pd.DataFrame:
    """The pair's own term (centred) on a grid: columns ``x``, ``y`` (values of the two
    characteristics), ``points``. Main effects are not included: this is what the pair
    adds on top of them."""
    index = pairs(predictor).index(tuple(pair))
    term = len(FEATURE_NAMES) + index
    a, b = (FEATURE_NAMES.index(n) for n in pair)
    xs, ys = (_grid_values(predictor, n, SURFACE_LEVELS) for n in pair)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    X = np.tile([predictor.typical_song[n] for n in FEATURE_NAMES], (gx.size, 1))
    X[:, a], X[:, b] = gx.ravel(), gy.ravel()
    points = _terms(predictor, X)[:, term] - _centres(predictor)[term]
    return pd.DataFrame({"x": gx.ravel(), "y": gy.ravel(), "points": points})


def term_strengths(predictor: Predictor) -> pd.DataFrame:
    """How much each term moves scores across real-like tracks: its standard deviation in
    points over the reference tracks. Columns ``term``, ``kind`` (main/pair), ``strength``."""
    terms = _terms(predictor, _reference_rows(predictor))
    names = list(FEATURE_NAMES) + [f"{a} × {b}" for a, b in pairs(predictor)]
    kinds = ["main"] * len(FEATURE_NAMES) + ["pair"] * len(pairs(predictor))
    return (pd.DataFrame({"term": names, "kind": kinds, "strength": terms.std(0)})
            .sort_values("strength", ascending=False, ignore_index=True))


def describe_shape(shape: pd.DataFrame, name: str) -> str:
    """One plain-words sentence on a characteristic's shape (rows of ``shape_functions``)."""
    rows = shape[shape["characteristic"] == name]
    feature = BY_NAME[name]
    if feature.is_discrete:
        best, worst = rows.loc[rows["points"].idxmax()], rows.loc[rows["points"].idxmin()]
        return (f"{feature.label}: songs in {feature.format(best['value'])} score about "
                f"{best['points']:+.1f} points against a typical track, songs in {feature.format(worst['value'])} "
                f"{worst['points']:+.1f}.")
    values, points = rows["value"].to_numpy(), rows["points"].to_numpy()
    low_v, high_v = values[len(values) // 10], values[-len(values) // 10]
    low_p, high_p = np.interp(low_v, values, points), np.interp(high_v, values, points)
    swing = points.max() - points.min()
    if swing < 0.5:
        return f"{feature.label}: makes almost no difference (under half a point across real tracks)."
    return (f"{feature.label}: songs above {feature.format(high_v)} score about {high_p:+.1f} points against a "
            f"typical track, songs below {feature.format(low_v)} about {low_p:+.1f}.")


def describe_surface(surface: pd.DataFrame, pair: tuple[str, str]) -> str:
    """One plain-words sentence on what a pair adds on top of its two shapes."""
    a, b = (BY_NAME[n] for n in pair)
    top, bottom = surface.loc[surface["points"].idxmax()], surface.loc[surface["points"].idxmin()]

    def level(feature, value, column) -> str:
        if feature.is_discrete:
            return f"{feature.label.lower()} {feature.format(value)}"
        values = np.sort(surface[column].unique())
        share = np.searchsorted(values, value) / max(len(values) - 1, 1)
        word = "low" if share < 0.34 else "high" if share > 0.66 else "middling"
        return f"{word} {feature.label.lower()} ({feature.format(value)})"

    return (f"{a.label} × {b.label}: together they add up to {top['points']:+.1f} points when "
            f"{level(a, top['x'], 'x')} meets {level(b, top['y'], 'y')}, and {bottom['points']:+.1f} when "
            f"{level(a, bottom['x'], 'x')} meets {level(b, bottom['y'], 'y')}, beyond what each does alone.")
