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

import copy
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from captum.attr import FeatureAblation, GradientShap, IntegratedGradients, ShapleyValueSampling

from virality.features import FEATURE_NAMES
from virality.model.prediction import Predictor

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
