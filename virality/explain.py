"""Attributions in popularity points: which characteristics push a score up or down.

Every attribution is per characteristic as the user sees it (key is one characteristic),
in popularity points, against a baseline song (default: the typical TikTok track, i.e. the
training medians). Methods (Captum):

* gradient methods (``ig``, ``deeplift``, ``gradshap``) run on the model's backbone over
  the transformed inputs ``z = model.transform(x)``. The transform is a fixed
  per-characteristic map, so f(x) − f(x0) = g(z) − g(z0) and the attributions of a
  characteristic's columns (key's sin and cos) are summed: completeness carries over;
* perturbation methods (``ablation``, ``shapley``) run on the raw 12 characteristics.

``delta`` is always Σ attributions − (f(song) − f(baseline)) in points (Captum's
convergence delta), with ``f`` the unclipped model output. ``TOLERANCE`` states how large
it may be for each method at its default settings (``None``: no completeness property).
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from captum.attr import FeatureAblation, GradientShap, IntegratedGradients, ShapleyValueSampling

from virality.features import BY_NAME, FEATURE_NAMES, FEATURES, load_song_arg, parse_song
from virality.predict import Predictor

IG_STEPS = 50  # interactive default: |delta| well under 0.5 points
BATCH_STEPS = 8  # ranking drivers for many rows: same top-2 as 50 steps for ~96 % of rows
GRADSHAP_SAMPLES = 500
SHAPLEY_PERMUTATIONS = 25
# path points per forward/backward pass of the path methods (IG, fast IG, GradientShap): the
# blend's activations stay in cache (IG 8 steps on 100k rows, one thread: about half the time of
# 40,000 points a pass) and memory stays bounded (GradientShap over 300 tracks in one pass took
# ~230 MB, which the allocator then kept)
PATH_POINTS_PER_PASS = 2048

METHODS: dict[str, str] = {"ig": "Integrated Gradients", "deeplift": "DeepLift", "gradshap": "GradientShap",
                           "ablation": "Feature ablation", "shapley": "Shapley value sampling"}
# largest |delta| (points) each method may show at its default settings; None = not additive
TOLERANCE: dict[str, float | None] = {"ig": 0.5, "deeplift": 0.01, "gradshap": 2.0, "ablation": None,
                                      "shapley": 0.01}
_ALIASES = {"integratedgradients": "ig", "integrated_gradients": "ig", "gradientshap": "gradshap",
            "featureablation": "ablation", "shapleyvaluesampling": "shapley", "shap": "shapley"}


def method_key(method: str) -> str:
    """``"ig"``, ``"IntegratedGradients"``, … → a key of ``METHODS``; ``ValueError`` otherwise."""
    key = str(method).strip().lower().replace(" ", "").replace("-", "")
    key = _ALIASES.get(key, key)
    if key not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return key


def song_array(song: Mapping[str, float]) -> np.ndarray:
    """A complete song → (1, 12) float32 in ``FEATURE_NAMES`` order."""
    return np.array([[float(song[n]) for n in FEATURE_NAMES]], dtype=np.float32)


def _baseline_array(predictor: Predictor, baseline: Mapping[str, float] | None) -> np.ndarray:
    return song_array(baseline if baseline is not None else predictor.typical_song)


class _PointsFromTransformed(torch.nn.Module):
    """The model after its input transform: (n, 13) transformed inputs → (n,) points."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.backbone(z) * self.model.target_std + self.model.target_mean


def group_columns(values: np.ndarray, groups: tuple[int, ...]) -> np.ndarray:
    """Sum (n, m) transformed-input columns into (n, 12) characteristics (key's sin and cos
    are one characteristic)."""
    out = np.zeros((values.shape[0], len(FEATURE_NAMES)))
    np.add.at(out.T, np.asarray(groups), values.T)
    return out


def _transform(model: torch.nn.Module, X: np.ndarray) -> torch.Tensor:
    with torch.inference_mode():
        z = model.transform(torch.as_tensor(X, dtype=torch.float32))
    return z.clone()  # a normal tensor again, so autograd may use it


def _points(model: torch.nn.Module, X: np.ndarray) -> np.ndarray:
    """(n, 12) → (n,) unclipped model output in points."""
    with torch.inference_mode():
        return model(torch.as_tensor(X, dtype=torch.float32)).double().numpy()


def _as_rows(X: np.ndarray) -> np.ndarray:
    return np.array(X, dtype=np.float32).reshape(-1, len(FEATURE_NAMES))  # a writable copy for torch


def integrated_gradients(predictor: Predictor, X: np.ndarray, baseline: Mapping[str, float] | None = None,
                         n_steps: int = IG_STEPS, chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Captum IG attributions ``(n, 12)`` in points and the convergence delta ``(n,)``.

    ``X``: (n, 12) characteristics; ``baseline``: a song (default: the typical track).
    The path runs straight in the model's transformed input space (quantile-normal
    scores, key on a circle) from the baseline to the song: this avoids the kinks of the
    piecewise-linear quantile map and costs one transform per row. ``chunk`` rows a pass
    (default: about ``PATH_POINTS_PER_PASS`` path points, which bounds the memory).
    """
    chunk = chunk or max(1, PATH_POINTS_PER_PASS // n_steps)
    model = predictor.model
    X = _as_rows(X)
    z0 = _transform(model, _baseline_array(predictor, baseline))
    ig = IntegratedGradients(_PointsFromTransformed(model))
    attributions, deltas = [], []
    for start in range(0, len(X), chunk):
        z = _transform(model, X[start:start + chunk])
        attr, delta = ig.attribute(z, baselines=z0.expand_as(z), n_steps=n_steps,
                                   method="gausslegendre", return_convergence_delta=True,
                                   internal_batch_size=max(len(z), 1) * n_steps)
        attributions.append(group_columns(attr.detach().double().numpy(), model.transform.output_groups))
        deltas.append(delta.detach().double().numpy())
    return np.concatenate(attributions), np.concatenate(deltas)


def fast_integrated_gradients(predictor: Predictor, X: np.ndarray, baseline: Mapping[str, float] | None = None,
                              n_steps: int = BATCH_STEPS, chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The same grouped IG (Gauss–Legendre path) as ``integrated_gradients`` in plain
    autograd, for many rows: one forward and backward over all path points of a chunk,
    without Captum's per-call overhead (about 3× faster on 100k rows). Same shapes.
    ``chunk`` rows a pass; by default ``PATH_POINTS_PER_PASS // n_steps``."""
    chunk = chunk or max(1, PATH_POINTS_PER_PASS // n_steps)
    model = predictor.model
    g = _PointsFromTransformed(model)
    X = _as_rows(X)
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    alphas = torch.tensor((nodes + 1) / 2, dtype=torch.float32)[:, None, None]
    weights = torch.tensor(weights / 2, dtype=torch.float32)[:, None, None]
    z0 = _transform(model, _baseline_array(predictor, baseline))
    with torch.inference_mode():
        g0 = float(g(z0)[0])
    attributions, deltas = [], []
    for start in range(0, len(X), chunk):
        z = _transform(model, X[start:start + chunk])
        step = z - z0
        path = (z0 + alphas * step).reshape(-1, z.shape[1]).requires_grad_()
        (grad,) = torch.autograd.grad(g(path).sum(), path)
        attr = ((grad.reshape(n_steps, *z.shape) * weights).sum(0) * step).double().numpy()
        with torch.inference_mode():
            gap = g(z).double().numpy() - g0
        attributions.append(group_columns(attr, model.transform.output_groups))
        deltas.append(attr.sum(1) - gap)
    return np.concatenate(attributions), np.concatenate(deltas)


ELEMENTWISE = (torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.ELU, torch.nn.GELU, torch.nn.SiLU, torch.nn.Tanh,
               torch.nn.Sigmoid, torch.nn.Softplus)


def deeplift_rescale(g: torch.nn.Module, z: torch.Tensor, z0: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """DeepLift (Rescale rule) of ``g``: (n, m) → (n,) at ``z`` against one baseline ``z0`` (1, m).

    Each registered element-wise nonlinearity passes gradient (y − y0)/(x − x0) instead of
    its derivative (the derivative where x ≈ x0), so attributions sum exactly to
    g(z) − g(z0) when everything else in ``g`` is linear. Written with forward hooks rather
    than Captum's ``DeepLift`` because Captum splits every activation into input and
    baseline halves along dim 0, which an ensemble backbone uses for its members.
    """
    g = copy.deepcopy(g)  # hooks on a private copy: other threads may be using the shared model
    modules = [m for m in g.modules() if isinstance(m, ELEMENTWISE)]
    reference: dict[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}

    def record(module, inputs, output):
        reference[module] = (inputs[0].detach(), output.detach())

    def rescale(module, inputs, output):
        x0, y0 = reference[module]
        dx = inputs[0] - x0
        far = dx.abs() > eps
        multiplier = torch.where(far, (output - y0) / torch.where(far, dx, 1.0), 0.0).detach()
        return torch.where(far, y0 + multiplier * dx, output)

    handles = [m.register_forward_hook(record) for m in modules]
    try:
        with torch.no_grad():
            g(z0)
    finally:
        for h in handles:
            h.remove()
    handles = [m.register_forward_hook(rescale) for m in modules]
    try:
        z = z.detach().requires_grad_()
        (grad,) = torch.autograd.grad(g(z).sum(), z)
    finally:
        for h in handles:
            h.remove()
    return grad * (z - z0)


def _gradient_method(predictor: Predictor, X: np.ndarray, baseline: np.ndarray, method: str,
                     n_samples: int, seed: int) -> np.ndarray:
    """DeepLift / GradientShap on the backbone over transformed inputs → (n, 12) points."""
    model = predictor.model
    g = _PointsFromTransformed(model).eval()
    z, z0 = _transform(model, X), _transform(model, baseline)
    # passes of about PATH_POINTS_PER_PASS points keep the blend's activations small (GradientShap:
    # n_samples points a row; 300 rows × 64 samples in one pass once took ~230 MB, which the
    # allocator kept afterwards; DeepLift: one point a row)
    rows = PATH_POINTS_PER_PASS if method == "deeplift" else max(1, PATH_POINTS_PER_PASS // n_samples)

    def one_pass(part: torch.Tensor) -> torch.Tensor:
        if method == "deeplift":
            return deeplift_rescale(g, part, z0)
        return GradientShap(g).attribute(part, baselines=z0, n_samples=n_samples, stdevs=0.0)

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        attr = torch.cat([one_pass(z[start:start + rows]) for start in range(0, len(z), rows)])
    return group_columns(attr.detach().double().numpy(), model.transform.output_groups)


def _perturbation_method(predictor: Predictor, X: np.ndarray, baseline: np.ndarray, method: str,
                         n_samples: int, seed: int) -> np.ndarray:
    """FeatureAblation / ShapleyValueSampling on the raw 12 characteristics → (n, 12) points."""
    model = predictor.model
    x, x0 = torch.as_tensor(X), torch.as_tensor(baseline)

    def forward(raw: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(raw)

    if method == "ablation":
        attr = FeatureAblation(forward).attribute(x, baselines=x0, perturbations_per_eval=len(FEATURE_NAMES))
    else:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            attr = ShapleyValueSampling(forward).attribute(x, baselines=x0, n_samples=n_samples,
                                                           perturbations_per_eval=len(FEATURE_NAMES))
    return attr.double().numpy()


def attribute(predictor: Predictor, X: np.ndarray, baseline: Mapping[str, float] | None = None,
              method: str = "ig", n_steps: int = IG_STEPS, n_samples: int | None = None,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Attributions ``(n, 12)`` in points and delta ``(n,)`` for any method of ``METHODS``.

    ``X``: (n, 12) characteristics; ``baseline``: a song (default: the typical track);
    ``n_steps``: IG path points; ``n_samples``: GradientShap samples or Shapley
    permutations (defaults ``GRADSHAP_SAMPLES`` / ``SHAPLEY_PERMUTATIONS``); ``seed`` makes
    the sampling methods repeatable.
    """
    method = method_key(method)
    X = _as_rows(X)
    if method == "ig":
        return integrated_gradients(predictor, X, baseline, n_steps=n_steps)
    x0 = _baseline_array(predictor, baseline)
    if method in ("deeplift", "gradshap"):
        attr = _gradient_method(predictor, X, x0, method, n_samples or GRADSHAP_SAMPLES, seed)
    else:
        attr = _perturbation_method(predictor, X, x0, method, n_samples or SHAPLEY_PERMUTATIONS, seed)
    gap = _points(predictor.model, X) - _points(predictor.model, x0)[0]
    return attr, attr.sum(1) - gap


def attribute_frame(predictor: Predictor, X: np.ndarray, baseline: Mapping[str, float] | None = None,
                    n_steps: int = BATCH_STEPS, method: str = "ig") -> pd.DataFrame:
    """(n, 12) characteristics → DataFrame (n, 12) of attributions in points.

    Built for many rows: IG uses ``fast_integrated_gradients`` with ``BATCH_STEPS`` path
    points by default (enough to rank drivers; pass ``n_steps=IG_STEPS`` for exact sums).
    """
    if method_key(method) == "ig":
        attributions, _ = fast_integrated_gradients(predictor, X, baseline, n_steps=n_steps)
    else:
        attributions, _ = attribute(predictor, X, baseline, method=method)
    return pd.DataFrame(attributions, columns=list(FEATURE_NAMES))


def top_drivers(attributions: pd.DataFrame, k: int = 2) -> pd.DataFrame:
    """Per row, the ``k`` characteristics pushing the score up most and holding it back most.

    Returns columns ``up_1..up_k`` and ``down_1..down_k`` (characteristic names, empty
    when fewer than k push that way).
    """
    values = attributions.to_numpy()
    names = np.array(attributions.columns)
    order_up = np.argsort(-values, axis=1)[:, :k]
    order_down = np.argsort(values, axis=1)[:, :k]
    result = {}
    for i in range(k):
        up, down = order_up[:, i], order_down[:, i]
        rows = np.arange(len(values))
        result[f"up_{i + 1}"] = np.where(values[rows, up] > 0, names[up], "")
        result[f"down_{i + 1}"] = np.where(values[rows, down] < 0, names[down], "")
    return pd.DataFrame(result, index=attributions.index)[[f"up_{i + 1}" for i in range(k)]
                                                          + [f"down_{i + 1}" for i in range(k)]]


# ---------------------------------------------------------------- one song, in words


@dataclass
class Explanation:
    """One song explained against one baseline.

    ``table``: one row per characteristic (model order) with ``feature``, ``label``,
    ``value``, ``baseline``, ``value_text``, ``baseline_text``, ``attribution`` (points).
    ``score``/``baseline_score``: the predictor's 0–100 scores; ``delta``: Σ attributions −
    (f(song) − f(baseline)); ``tolerance``: the method's allowed |delta| (None: not additive).
    """

    method: str
    baseline_label: str
    score: float
    baseline_score: float
    delta: float
    tolerance: float | None
    table: pd.DataFrame

    @property
    def delta_exceeds_tolerance(self) -> bool:
        return self.tolerance is not None and abs(self.delta) > self.tolerance

    def to_json(self) -> dict[str, Any]:
        """The ``python -m virality explain --json`` contract."""
        return {"score": round(self.score, 3), "baseline_score": round(self.baseline_score, 3),
                "delta": round(self.delta, 4), "method": self.method,
                "attributions": {row.feature: {"value": row.value, "baseline": row.baseline,
                                               "attribution": round(row.attribution, 4)}
                                 for row in self.table.itertuples()}}


def explain_song(predictor: Predictor, song: Mapping[str, Any], baseline: Mapping[str, Any] | None = None,
                 method: str = "ig", baseline_label: str = "typical", **options) -> Explanation:
    """Explain one song (validated with ``parse_song``; missing characteristics take their
    default) against ``baseline`` (default: the typical track) with ``method``."""
    method = method_key(method)
    values, _ = parse_song(song)
    reference = parse_song(baseline)[0] if baseline is not None else predictor.typical_song
    attr, delta = attribute(predictor, song_array(values), reference, method=method, **options)
    scores = predictor.predict_array(np.vstack([song_array(values), song_array(reference)]))["predicted_popularity"]
    table = pd.DataFrame({
        "feature": list(FEATURE_NAMES), "label": [f.label for f in FEATURES],
        "value": [values[n] for n in FEATURE_NAMES], "baseline": [reference[n] for n in FEATURE_NAMES],
        "value_text": [BY_NAME[n].format(values[n]) for n in FEATURE_NAMES],
        "baseline_text": [BY_NAME[n].format(reference[n]) for n in FEATURE_NAMES],
        "attribution": attr[0],
    })
    return Explanation(method, baseline_label, float(scores.iloc[0]), float(scores.iloc[1]), float(delta[0]),
                       TOLERANCE[method], table)


def _phrase(row) -> str:
    """``"lower energy"``, ``"faster tempo"``, ``"the key of A"``, ``"the minor mode"`` (vs the baseline)."""
    feature = BY_NAME[row.feature]
    higher = row.value > row.baseline
    if feature.kind == "key":
        return f"the key of {row.value_text}"
    if feature.kind == "mode":
        return f"the {row.value_text} mode"
    words = {"tempo": ("faster tempo", "slower tempo"), "loudness": ("louder master", "quieter master"),
             "duration": ("longer track", "shorter track")}
    default = (f"higher {feature.label.lower()}", f"lower {feature.label.lower()}")
    return words.get(feature.name, default)[0 if higher else 1]


def summary_sentence(explanation: Explanation, minimum: float = 0.25) -> str:
    """One sentence in plain words: what mostly moves the score, and what pulls the other way
    (characteristics moving it by less than ``minimum`` points are left out)."""
    table = explanation.table
    total = explanation.score - explanation.baseline_score
    if table["attribution"].abs().max() < minimum:
        name = "the typical track" if explanation.baseline_label == "typical" else explanation.baseline_label
        return f"Scores like {name}: no characteristic moves it by {minimum} points or more."
    main_up = total >= 0
    main = table[table["attribution"] > minimum] if main_up else table[table["attribution"] < -minimum]
    other = table[table["attribution"] < -minimum] if main_up else table[table["attribution"] > minimum]
    main = main.reindex(main["attribution"].abs().sort_values(ascending=False).index).head(2)
    other = other.reindex(other["attribution"].abs().sort_values(ascending=False).index).head(1)
    parts = " and ".join(f"{_phrase(r)} ({r.attribution:+.1f})" for r in main.itertuples())
    sentence = f"Mostly {'lifted by' if main_up else 'held back by'} {parts}" if parts else "Close to the baseline"
    if len(other):
        r = next(other.itertuples())
        sentence += f"; {_phrase(r)} {'helps' if r.attribution > 0 else 'holds it back'} ({r.attribution:+.1f})"
    return sentence[0].upper() + sentence[1:] + "."


# ---------------------------------------------------------------- baselines and the CLI


def resolve_baseline(predictor: Predictor, spec: str | None) -> tuple[str, dict[str, float]]:
    """``--baseline``: ``typical`` (training medians), a demo track's title, or a song as
    inline JSON / a JSON file → ``(label, song)``."""
    from virality.demo import demo_tracks

    text = (spec or "typical").strip()
    if text.lower() == "typical":
        return "typical", predictor.typical_song
    titles = demo_tracks()["title"].tolist()
    match = [t for t in titles if t.lower() == text.lower()]
    if match:
        from virality.demo import demo_song

        return match[0], demo_song(match[0])
    from pathlib import Path

    if not text.startswith("{") and not Path(text).is_file():
        raise ValueError(f"--baseline {text!r} is not 'typical', a demo title ({'; '.join(titles)}), "
                         "inline song JSON or a JSON file")
    try:
        return "your baseline song", load_song_arg(text)[0]
    except ValueError as err:
        raise ValueError(f"--baseline: {err}") from None


def baseline_choices(predictor: Predictor, scored: Mapping[str, Mapping[str, float]] | None = None,
                     exclude: Mapping[str, float] | None = None) -> dict[str, dict[str, float]]:
    """Baselines a user can pick, label → song: the typical track, every demo track, then
    the songs they scored this session (except ``exclude``, usually the current song)."""
    from virality.demo import demo_tracks

    choices = {"typical": predictor.typical_song}
    for row in demo_tracks().itertuples(index=False):
        choices[row.title] = {n: float(getattr(row, n)) for n in FEATURE_NAMES}
    for label, song in (scored or {}).items():
        values = {n: float(song[n]) for n in FEATURE_NAMES}
        if exclude is None or values != {n: float(exclude[n]) for n in FEATURE_NAMES}:
            choices.setdefault(label, values)
    return choices


def explanation_text(explanation: Explanation) -> str:
    """A readable table for the terminal."""
    lines = [f"score {explanation.score:.1f} vs {explanation.baseline_label} {explanation.baseline_score:.1f} "
             f"({METHODS[explanation.method]}, delta {explanation.delta:+.3f} points)",
             f"{'characteristic':18s} {'this song':>12s} {'baseline':>12s} {'points':>8s}"]
    ordered = explanation.table.reindex(explanation.table["attribution"].abs().sort_values(ascending=False).index)
    for row in ordered.itertuples():
        lines.append(f"{row.label:18s} {row.value_text:>12s} {row.baseline_text:>12s} {row.attribution:+8.2f}")
    lines.append(summary_sentence(explanation))
    return "\n".join(lines)


def run_cli(args: argparse.Namespace) -> int:
    """``python -m virality explain --song SONG [--method ig] [--baseline typical] [--json]``."""
    from virality.cli import load_predictor_for_cli, print_json

    method = method_key(args.method)
    song, filled = load_song_arg(args.song)
    predictor = load_predictor_for_cli(args)
    label, baseline = resolve_baseline(predictor, args.baseline)
    explanation = explain_song(predictor, song, baseline, method=method, baseline_label=label)
    if filled:
        print(f"not given, using the typical value: {', '.join(filled)}", file=sys.stderr)
    if args.json:
        print_json(explanation.to_json())
    else:
        print(explanation_text(explanation))
    return 0
