"""Attributions in popularity points: which characteristics push a score up or down.

Every attribution is per characteristic as the user sees it (key is one characteristic),
in popularity points, against a baseline song (default: the typical TikTok track, i.e. the
training medians). One class per method, as in Captum: constructed on the output it explains
(a ``ModelOutput``: the model's input transform and a head from transformed inputs to one
scalar, e.g. ``popularity_output(model)``), then ``attribute``; ``METHODS`` is the registry.

* gradient methods (``ig``, ``deeplift``, ``gradshap``) run on the head over the transformed
  inputs ``z = transform(x)``. The transform is a fixed per-characteristic map, so
  f(x) − f(x0) = g(z) − g(z0) and the attributions of a characteristic's columns (key's sin
  and cos) are summed: completeness carries over;
* perturbation methods (``ablation``, ``shapley``) run on the raw 12 characteristics.

``delta`` is always Σ attributions − (f(song) − f(baseline)) in points (Captum's
convergence delta), with ``f`` the unclipped output. Each method's ``tolerance`` states how
large it may be at its default settings (``None``: no completeness property).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from captum import attr as captum_attr

from virality.chunks import row_chunks
from virality.features import FEATURE_NAMES
from virality.model.fit import FitHead
from virality.model.prediction import Predictor

# path points per forward/backward pass of the path methods (IG, fast IG, GradientShap): the
# blend's activations stay in cache (IG 8 steps on 100k rows, one thread: about half the time of
# 40,000 points a pass) and memory stays bounded (GradientShap over 300 tracks in one pass took
# ~230 MB, which the allocator then kept)
PATH_POINTS_PER_PASS = 2048


def song_array(song: Mapping[str, float]) -> np.ndarray:
    """A complete song → (1, 12) float32 in ``FEATURE_NAMES`` order."""
    return np.array([[float(song[n]) for n in FEATURE_NAMES]], dtype=np.float32)


def group_columns(values: np.ndarray, groups: tuple[int, ...]) -> np.ndarray:
    """Sum (n, m) transformed-input columns into (n, 12) characteristics (key's sin and cos
    are one characteristic)."""
    out = np.zeros((values.shape[0], len(FEATURE_NAMES)))
    np.add.at(out.T, np.asarray(groups), values.T)
    return out


@contextlib.contextmanager
def seeded(seed: int):
    """Run the sampling methods repeatably: torch's and numpy's global generators seeded with
    ``seed`` (Captum's GradientShap draws its path points from numpy's), both restored after."""
    state = np.random.get_state()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)


def _as_rows(X: np.ndarray) -> np.ndarray:
    return np.array(X, dtype=np.float32).reshape(-1, len(FEATURE_NAMES))  # a writable copy for torch


@dataclass(frozen=True)
class ModelOutput:
    """One scalar output of a model, as the attribution methods see it.

    ``transform``: (n, 12) characteristics → (n, m) transformed inputs (a fixed
    per-characteristic map; its ``output_groups`` name each column's characteristic);
    ``head``: (n, m) transformed inputs → (n,) the output, e.g. popularity points. Another
    output of the same inputs (another head) is explained by the same methods unchanged.
    """

    transform: torch.nn.Module
    head: torch.nn.Module

    def transformed(self, X: np.ndarray) -> torch.Tensor:
        """(n, 12) → (n, m) transformed inputs, a normal tensor autograd may use."""
        with torch.inference_mode():
            z = self.transform(torch.as_tensor(X, dtype=torch.float32))
        return z.clone()

    def on_raw(self, raw: torch.Tensor) -> torch.Tensor:
        """(n, 12) characteristics → (n,) the output."""
        return self.head(self.transform(raw))

    def values(self, X: np.ndarray) -> np.ndarray:
        """(n, 12) → (n,) the output as float64, no autograd."""
        with torch.inference_mode():
            return self.on_raw(torch.as_tensor(X, dtype=torch.float32)).double().numpy()

    def grouped(self, attributions: torch.Tensor) -> np.ndarray:
        """(n, m) attributions over transformed columns → (n, 12) per characteristic."""
        return group_columns(attributions.detach().double().numpy(), self.transform.output_groups)


class _PointsFromTransformed(torch.nn.Module):
    """The model after its input transform: (n, 13) transformed inputs → (n,) points."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.backbone(z) * self.model.target_std + self.model.target_mean


def popularity_output(model: torch.nn.Module) -> ModelOutput:
    """The ``ViralityModel``'s score (unclipped points) as a ``ModelOutput``."""
    return ModelOutput(model.transform, _PointsFromTransformed(model).eval())


class AttributionMethod:
    """An attribution method: ``key`` (as the CLI and the page name it), ``label``,
    ``aliases`` ``method_key`` accepts, ``tolerance`` (largest |delta| in points at the
    default settings; None: not additive), default ``n_steps`` (path points) or
    ``n_samples`` (samples or permutations), ``batch_steps`` (path points when ranking the
    drivers of many rows), ``global_samples`` (samples per track when averaging over
    hundreds of tracks, which smooths their noise) and ``ranks_drivers`` (offered for a
    table's drivers). Construct on a ``ModelOutput``, then ``attribute``."""

    key: ClassVar[str]
    label: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    tolerance: ClassVar[float | None] = None
    n_steps: ClassVar[int | None] = None
    n_samples: ClassVar[int | None] = None
    batch_steps: ClassVar[int | None] = None
    global_samples: ClassVar[int | None] = None
    ranks_drivers: ClassVar[bool] = False

    def __init__(self, output: ModelOutput):
        self.output = output

    @classmethod
    def has_convergence_delta(cls) -> bool:
        """Its attributions add up to f(x) − f(x0) (within ``tolerance``), so delta is its
        error; otherwise delta is what characteristics acting together add."""
        return cls.tolerance is not None

    def attribute(self, X: np.ndarray, baseline: np.ndarray, *, n_steps: int | None = None,
                  n_samples: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(n, 12) characteristics against a (1, 12) baseline → attributions (n, 12) in the
        output's units and delta (n,). ``n_steps`` / ``n_samples`` (default: the method's)
        apply to the methods that have them; ``seed`` makes the sampling ones repeatable."""
        X, baseline = _as_rows(X), _as_rows(baseline)
        attr = self._attributions(X, baseline, n_steps or self.n_steps, n_samples or self.n_samples, seed)
        return attr, attr.sum(1) - (self.output.values(X) - self.output.values(baseline)[0])

    def attribute_batch(self, X: np.ndarray, baseline: np.ndarray,
                        n_steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``attribute`` at the settings for many rows (the drivers of a table)."""
        return self.attribute(X, baseline)

    def _attributions(self, X: np.ndarray, baseline: np.ndarray, n_steps: int | None, n_samples: int | None,
                      seed: int) -> np.ndarray:
        raise NotImplementedError


class IntegratedGradients(AttributionMethod):
    """Captum's Integrated Gradients, Gauss–Legendre path straight in the transformed inputs
    (quantile-normal scores, key on a circle) from the baseline to the song: this avoids the
    kinks of the piecewise-linear quantile map and costs one transform per row."""

    key, label = "ig", "Integrated Gradients"
    aliases = ("integratedgradients", "integrated_gradients")
    tolerance = 0.5
    n_steps = 50  # interactive default: |delta| well under 0.5 points
    batch_steps = 8  # ranking drivers for many rows: same top-2 as 50 steps for ~96 % of rows
    ranks_drivers = True

    def attribute(self, X: np.ndarray, baseline: np.ndarray, *, n_steps: int | None = None,
                  n_samples: int | None = None, seed: int = 0,
                  chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Attributions (n, 12) and Captum's own convergence delta (n,); ``chunk`` rows a pass
        (default: about ``PATH_POINTS_PER_PASS`` path points, which bounds the memory)."""
        n_steps = n_steps or self.n_steps
        chunk = chunk or max(1, PATH_POINTS_PER_PASS // n_steps)
        X = _as_rows(X)
        z0 = self.output.transformed(_as_rows(baseline))
        ig = captum_attr.IntegratedGradients(self.output.head)
        attributions, deltas = [], []
        for rows in row_chunks(len(X), chunk):
            z = self.output.transformed(X[rows])
            attr, delta = ig.attribute(z, baselines=z0.expand_as(z), n_steps=n_steps,
                                       method="gausslegendre", return_convergence_delta=True,
                                       internal_batch_size=max(len(z), 1) * n_steps)
            attributions.append(self.output.grouped(attr))
            deltas.append(delta.detach().double().numpy())
        return np.concatenate(attributions), np.concatenate(deltas)

    def attribute_batch(self, X: np.ndarray, baseline: np.ndarray, n_steps: int | None = None,
                        chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The same grouped IG (``batch_steps`` path points by default) in plain autograd,
        for many rows: one forward and backward over all path points of a chunk, without
        Captum's per-call overhead (about 3× faster on 100k rows). Same shapes; ``chunk``
        rows a pass, by default ``PATH_POINTS_PER_PASS // n_steps``."""
        n_steps = n_steps or self.batch_steps
        chunk = chunk or max(1, PATH_POINTS_PER_PASS // n_steps)
        g = self.output.head
        X = _as_rows(X)
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        alphas = torch.tensor((nodes + 1) / 2, dtype=torch.float32)[:, None, None]
        weights = torch.tensor(weights / 2, dtype=torch.float32)[:, None, None]
        z0 = self.output.transformed(_as_rows(baseline))
        with torch.inference_mode():
            g0 = float(g(z0)[0])
        attributions, deltas = [], []
        for rows in row_chunks(len(X), chunk):
            z = self.output.transformed(X[rows])
            step = z - z0
            path = (z0 + alphas * step).reshape(-1, z.shape[1]).requires_grad_()
            (grad,) = torch.autograd.grad(g(path).sum(), path)
            attr = ((grad.reshape(n_steps, *z.shape) * weights).sum(0) * step).double().numpy()
            with torch.inference_mode():
                gap = g(z).double().numpy() - g0
            attributions.append(group_columns(attr, self.output.transform.output_groups))
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


class _OnTransformedInputs(AttributionMethod):
    """A gradient method on the head over transformed inputs, in passes of about
    ``PATH_POINTS_PER_PASS`` points (``_rows_per_pass``), seeded."""

    def _attributions(self, X: np.ndarray, baseline: np.ndarray, n_steps: int | None, n_samples: int | None,
                      seed: int) -> np.ndarray:
        z, z0 = self.output.transformed(X), self.output.transformed(baseline)
        rows = self._rows_per_pass(n_samples)
        with seeded(seed):
            attr = torch.cat([self._one_pass(z[part], z0, n_samples) for part in row_chunks(len(z), rows)])
        return self.output.grouped(attr)

    def _rows_per_pass(self, n_samples: int | None) -> int:
        raise NotImplementedError

    def _one_pass(self, z: torch.Tensor, z0: torch.Tensor, n_samples: int | None) -> torch.Tensor:
        raise NotImplementedError


class DeepLift(_OnTransformedInputs):
    """DeepLift, Rescale rule (``deeplift_rescale``): one forward and backward pass, exact
    completeness."""

    key, label = "deeplift", "DeepLift"
    tolerance = 0.01
    ranks_drivers = True

    def _rows_per_pass(self, n_samples: int | None) -> int:
        return PATH_POINTS_PER_PASS  # one point a row

    def _one_pass(self, z: torch.Tensor, z0: torch.Tensor, n_samples: int | None) -> torch.Tensor:
        return deeplift_rescale(self.output.head, z, z0)


class GradientShap(_OnTransformedInputs):
    """Captum's GradientShap (expected gradients between the baseline and the song; no noise)."""

    key, label = "gradshap", "GradientShap"
    aliases = ("gradientshap",)
    tolerance = 2.0
    n_samples = 500
    global_samples = 64

    def _rows_per_pass(self, n_samples: int | None) -> int:
        # n_samples points a row: 300 rows × 64 samples in one pass once took ~230 MB, which the
        # allocator kept afterwards
        return max(1, PATH_POINTS_PER_PASS // n_samples)

    def _one_pass(self, z: torch.Tensor, z0: torch.Tensor, n_samples: int | None) -> torch.Tensor:
        return captum_attr.GradientShap(self.output.head).attribute(z, baselines=z0, n_samples=n_samples, stdevs=0.0)


class _OnRawInputs(AttributionMethod):
    """A perturbation method on the raw 12 characteristics (no gradients)."""

    def _forward(self, raw: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.output.on_raw(raw)


class FeatureAblation(_OnRawInputs):
    """Captum's FeatureAblation: each characteristic set to the baseline's alone."""

    key, label = "ablation", "Feature ablation"
    aliases = ("featureablation",)

    def _attributions(self, X: np.ndarray, baseline: np.ndarray, n_steps: int | None, n_samples: int | None,
                      seed: int) -> np.ndarray:
        attr = captum_attr.FeatureAblation(self._forward).attribute(
            torch.as_tensor(X), baselines=torch.as_tensor(baseline), perturbations_per_eval=len(FEATURE_NAMES))
        return attr.double().numpy()


class ShapleyValueSampling(_OnRawInputs):
    """Captum's ShapleyValueSampling over ``n_samples`` random orders of the characteristics."""

    key, label = "shapley", "Shapley value sampling"
    aliases = ("shapleyvaluesampling", "shap")
    tolerance = 0.01
    n_samples = 25
    global_samples = 10

    def _attributions(self, X: np.ndarray, baseline: np.ndarray, n_steps: int | None, n_samples: int | None,
                      seed: int) -> np.ndarray:
        with seeded(seed):
            attr = captum_attr.ShapleyValueSampling(self._forward).attribute(
                torch.as_tensor(X), baselines=torch.as_tensor(baseline), n_samples=n_samples,
                perturbations_per_eval=len(FEATURE_NAMES))
        return attr.double().numpy()


METHODS: dict[str, type[AttributionMethod]] = {
    m.key: m for m in (IntegratedGradients, DeepLift, GradientShap, FeatureAblation, ShapleyValueSampling)}
_ALIASES = {alias: m.key for m in METHODS.values() for alias in m.aliases}


def method_key(method: str) -> str:
    """``"ig"``, ``"IntegratedGradients"``, … → a key of ``METHODS``; ``ValueError`` otherwise."""
    key = str(method).strip().lower().replace(" ", "").replace("-", "")
    key = _ALIASES.get(key, key)
    if key not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return key


TARGETS = {"popularity": "popularity points", "fit": "percentage points of TikTok fit"}


def model_output(predictor: Predictor, target: str = "popularity") -> ModelOutput:
    """The output a user asks to explain: ``"popularity"`` (points) or ``"fit"`` (TikTok fit, %);
    ``ValueError`` for another name or a bundle without the TikTok-fit model."""
    if target == "popularity":
        return popularity_output(predictor.model)
    if target != "fit":
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if predictor.fit is None:
        raise ValueError("this model bundle has no TikTok-fit model: train it with --catalogue")
    return ModelOutput(predictor.fit.transform, FitHead(predictor.fit).eval())


def explainer(predictor: Predictor, method: str = "ig", target: str = "popularity") -> AttributionMethod:
    """``method`` (any name ``method_key`` accepts) constructed on the predictor's ``target``."""
    return METHODS[method_key(method)](model_output(predictor, target))


def _baseline_array(predictor: Predictor, baseline: Mapping[str, float] | None) -> np.ndarray:
    return song_array(baseline if baseline is not None else predictor.typical_song)


def attribute(predictor: Predictor, X: np.ndarray, baseline: Mapping[str, float] | None = None,
              method: str = "ig", n_steps: int | None = None, n_samples: int | None = None,
              seed: int = 0, target: str = "popularity") -> tuple[np.ndarray, np.ndarray]:
    """Attributions ``(n, 12)`` and delta ``(n,)`` of ``target`` by any method of ``METHODS``, in
    the target's units (popularity points, or percentage points of TikTok fit).

    ``X``: (n, 12) characteristics; ``baseline``: a song (default: the typical track);
    ``n_steps``: IG path points; ``n_samples``: GradientShap samples or Shapley
    permutations (defaults: the method's); ``seed`` makes the sampling methods repeatable.
    """
    return explainer(predictor, method, target).attribute(X, _baseline_array(predictor, baseline), n_steps=n_steps,
                                                  n_samples=n_samples, seed=seed)


def attribute_batch(predictor: Predictor, X: np.ndarray, baseline: Mapping[str, float] | None = None,
                    method: str = "ig", n_steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``attribute`` for many rows: IG in plain autograd at ``batch_steps`` path points
    (enough to rank drivers; pass ``n_steps=IntegratedGradients.n_steps`` for exact sums)."""
    return explainer(predictor, method).attribute_batch(X, _baseline_array(predictor, baseline), n_steps=n_steps)


def attribute_frame(predictor: Predictor, X: np.ndarray, baseline: Mapping[str, float] | None = None,
                    n_steps: int | None = None, method: str = "ig") -> pd.DataFrame:
    """(n, 12) characteristics → DataFrame (n, 12) of ``attribute_batch``'s attributions in points."""
    attributions, _ = attribute_batch(predictor, X, baseline, method, n_steps)
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
