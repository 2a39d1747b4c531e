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

from virality.features import BY_NAME, FEATURE_NAMES
from virality.model.bundle import ARTIFACTS_DIR
from virality.model.prediction import Predictor, load_predictor
from virality.plotting import signed

ADDITIVE_DIR = ARTIFACTS_DIR / "additive"
GRID_LEVELS = np.arange(2, 99)  # percentiles of real tracks the shapes are drawn over
SURFACE_LEVELS = np.linspace(5, 95, 19)


def load_additive(path: str | Path = ADDITIVE_DIR) -> Predictor:
    """The additive network bundled beside the shipped model (or the shipped one, if additive)."""
    predictor = load_predictor(path)
    if predictor.info.model.arch != "additive":
        raise ValueError(f"the model in {path} is {predictor.info.model.arch}, not the additive network")
    return predictor


def _grid(predictor: Predictor, name: str, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values of characteristic ``name`` at percentiles ``levels`` of real tracks: (unique
    values, the lowest percentile of real tracks each stands for). Key and mode: every
    value, percentile NaN."""
    j = FEATURE_NAMES.index(name)
    if BY_NAME[name].is_discrete:
        low, high = (0, 11) if name == "key" else (0, 1)
        values = np.arange(low, high + 1, dtype=float)
        return values, np.full(len(values), np.nan)
    table = predictor.info.distribution.quantiles[:, j]
    values, first = np.unique(np.interp(levels, np.arange(101), table), return_index=True)
    return values, np.asarray(levels, float)[first]


def _terms(predictor: Predictor, X: np.ndarray) -> np.ndarray:
    """(n, 12) raw → (n, 12 + n_pairs) terms in popularity points."""
    model = predictor.model
    with torch.inference_mode():
        z = model.transform(torch.as_tensor(X, dtype=torch.float32))
        return model.backbone.terms(z).numpy().astype(float) * float(model.target_std)


def _reference_rows(predictor: Predictor) -> np.ndarray:
    """(101, 12) synthetic tracks: each characteristic at its own 0…100 % quantiles, columns
    shuffled independently (seeded), a stand-in for real tracks when centring terms."""
    table = predictor.info.distribution.quantiles
    rng = np.random.default_rng(0)
    return np.column_stack([rng.permutation(table[:, j]) for j in range(table.shape[1])])


def _centres(predictor: Predictor) -> np.ndarray:
    """Each term's mean over the reference tracks: subtracting it makes "typical" = 0."""
    return _terms(predictor, _reference_rows(predictor)).mean(0)


def shape_functions(predictor: Predictor) -> pd.DataFrame:
    """One row per (characteristic, grid value): ``characteristic``, ``value`` (Spotify
    units), ``percentile`` (share of real tracks below it, 2–98; NaN for key and mode),
    ``points`` (the term, centred: + means above a typical track)."""
    centres = _centres(predictor)
    typical = np.array([predictor.typical_song[n] for n in FEATURE_NAMES])
    frames = []
    for j, name in enumerate(FEATURE_NAMES):
        values, percentiles = _grid(predictor, name, GRID_LEVELS)
        X = np.tile(typical, (len(values), 1))
        X[:, j] = values
        frames.append(pd.DataFrame({"characteristic": name, "value": values, "percentile": percentiles,
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
    xs, ys = (_grid(predictor, n, SURFACE_LEVELS)[0] for n in pair)
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


NEGLIGIBLE = 0.5  # points: a shape or surface that moves scores less than this "makes almost no difference"
# how to say a low / middling / high value where "high <label>" would read oddly ("high length")
LEVEL_PHRASES = {"duration": ("short songs", "songs of middling length", "long songs"),
                 "tempo": ("slow tempo", "middling tempo", "fast tempo"),
                 "loudness": ("quiet masters", "middling loudness", "loud masters")}


def describe_shape(shape: pd.DataFrame, name: str) -> str:
    """One plain-words sentence on a characteristic's shape (rows of ``shape_functions``).

    Continuous: what songs in the lowest and highest tenth of real tracks score against a
    typical track, and a bump or dip in between when it goes beyond both ends. Where a
    tenth sits at the edge of real values (most tracks have instrumentalness 0.00), it
    says "songs at 0.00", never "below 0.00"."""
    rows = shape[shape["characteristic"] == name]
    feature = BY_NAME[name]
    points = rows["points"].to_numpy()
    if points.max() - points.min() < NEGLIGIBLE:
        return f"{feature.label}: makes almost no difference (under half a point across real tracks)."
    if feature.is_discrete:
        best, worst = rows.loc[rows["points"].idxmax()], rows.loc[rows["points"].idxmin()]
        return (f"{feature.label}: songs in {feature.format(best['value'])} score about "
                f"{signed(best['points'])} points against a typical track, songs in "
                f"{feature.format(worst['value'])} {signed(worst['points'])}.")
    values = rows["value"].to_numpy()
    percentiles = rows["percentile"].to_numpy() if "percentile" in rows else np.linspace(2, 98, len(values))
    low_end, high_end = _tenth(feature, values, points, percentiles, low=True), \
        _tenth(feature, values, points, percentiles, low=False)
    sentence = (f"{feature.label}: {high_end[0]} score about {signed(high_end[1])} points against a typical "
                f"track, {low_end[0]} about {signed(low_end[1])}")
    inner = (values > low_end[2]) & (values < high_end[2])
    if inner.any():
        peak, dip = np.argmax(np.where(inner, points, -np.inf)), np.argmin(np.where(inner, points, np.inf))
        ends = (low_end[1], high_end[1])
        if points[peak] - max(ends) >= NEGLIGIBLE:
            sentence += f", and most in between, around {feature.format(values[peak])} ({signed(points[peak])})"
        elif min(ends) - points[dip] >= NEGLIGIBLE:
            sentence += f", and least in between, around {feature.format(values[dip])} ({signed(points[dip])})"
    return sentence + "."


def _tenth(feature, values: np.ndarray, points: np.ndarray, percentiles: np.ndarray,
           low: bool) -> tuple[str, float, float]:
    """(phrase, points, threshold) for the songs in the lowest (``low``) or highest tenth:
    "songs below 0.55" / "songs above 0.89"; "songs at 0.00" when the tenth sits on the
    lowest (highest) real value, "songs around 0.03" when it is that value as shown, since
    "below" ("above") it would describe no song."""
    # the value at the 10th (90th) percentile of real tracks: the last grid value standing for it
    position = min(max(int(np.searchsorted(percentiles, 10 if low else 90, side="right")) - 1, 0), len(values) - 1)
    threshold, at = values[position], points[position]
    edge, edge_points = (values[0], points[0]) if low else (values[-1], points[-1])
    if feature.format(threshold) == feature.format(edge):
        word = "at" if np.isclose(threshold, edge, rtol=0, atol=1e-9 * max(abs(values[-1] - values[0]), 1.0)) \
            else "around"
        return f"songs {word} {feature.format(edge)}", float(edge_points), float(threshold)
    return f"songs {'below' if low else 'above'} {feature.format(threshold)}", float(at), float(threshold)


def describe_surface(surface: pd.DataFrame, pair: tuple[str, str]) -> str:
    """One plain-words sentence on what a pair adds on top of its two shapes."""
    a, b = (BY_NAME[n] for n in pair)
    if surface["points"].max() - surface["points"].min() < NEGLIGIBLE:
        return f"{a.label} × {b.label}: together they add almost nothing beyond what each does alone."
    top, bottom = surface.loc[surface["points"].idxmax()], surface.loc[surface["points"].idxmin()]

    def level(feature, value, column) -> str:
        if feature.is_discrete:
            return f"{feature.label.lower()} {feature.format(value)}"
        values = np.sort(surface[column].unique())
        share = np.searchsorted(values, value) / max(len(values) - 1, 1)
        label = feature.label.lower()
        phrases = LEVEL_PHRASES.get(feature.name, (f"low {label}", f"middling {label}", f"high {label}"))
        phrase = phrases[0] if share < 0.34 else phrases[2] if share > 0.66 else phrases[1]
        return f"{phrase} ({feature.format(value)})"

    return (f"{a.label} × {b.label}: together they add up to {signed(top['points'])} points when "
            f"{level(a, top['x'], 'x')} meets {level(b, top['y'], 'y')}, and {signed(bottom['points'])} when "
            f"{level(a, bottom['x'], 'x')} meets {level(b, bottom['y'], 'y')}, beyond what each does alone.")
