"""PyTorch models over the 12 characteristics.

Every model is a ``ViralityModel``: raw characteristics in Spotify units, shape ``(n, 12)``
in ``FEATURE_NAMES`` order → popularity points, shape ``(n,)``. Inside, an
``InputTransform`` (fitted quantiles → normal scores, key as a point on a circle, mode
centred) feeds a backbone chosen by name from ``ARCHITECTURES``. Because the transform is
part of the graph, gradients and Captum attributions are taken with respect to the
characteristics exactly as the user sees them (key is one input, not twelve).

Saved as a ``state_dict`` plus ``{"arch": name, "arch_kwargs": {...}}`` and the fitted
preprocessing; never a pickled module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from virality.features import BY_NAME, FEATURE_NAMES

KEY_INDEX = FEATURE_NAMES.index("key")
MODE_INDEX = FEATURE_NAMES.index("mode")
CONTINUOUS = tuple(i for i, n in enumerate(FEATURE_NAMES) if not BY_NAME[n].is_discrete)
EPS = 1e-4  # keeps the normal scores finite at the ends of the fitted range


@dataclass
class Preprocessing:
    """Fitted, data-derived input and target scaling (saved with joblib).

    ``knots[j]``/``levels[j]``: increasing values and their empirical CDF for continuous
    feature ``CONTINUOUS[j]``. ``target_mean``/``target_std``: popularity scaling.
    """

    knots: list[np.ndarray]
    levels: list[np.ndarray]
    target_mean: float
    target_std: float
    extra: dict = field(default_factory=dict)

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, n_quantiles: int = 101) -> Preprocessing:
        """``X``: (n, 12) raw characteristics; ``y``: (n,) popularity."""
        probs = np.linspace(0.0, 1.0, n_quantiles)
        knots, levels = [], []
        for column in CONTINUOUS:
            values = np.quantile(X[:, column], probs)
            unique, inverse = np.unique(values, return_inverse=True)
            # tied quantiles (e.g. many zeros in instrumentalness) share their mean level
            mean_levels = np.bincount(inverse, weights=probs) / np.bincount(inverse)
            if len(unique) == 1:
                unique, mean_levels = np.array([unique[0], unique[0] + 1e-6]), np.array([0.0, 1.0])
            knots.append(unique.astype(np.float64))
            levels.append(mean_levels.astype(np.float64))
        return cls(knots, levels, float(np.mean(y)), float(np.std(y) or 1.0))

    def to_dict(self) -> dict:
        """Plain dict of lists/floats: safe to joblib-dump and to compare."""
        return {"knots": [k.tolist() for k in self.knots], "levels": [v.tolist() for v in self.levels],
                "target_mean": self.target_mean, "target_std": self.target_std, "extra": self.extra}

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        return cls([np.asarray(k) for k in data["knots"]], [np.asarray(v) for v in data["levels"]],
                   float(data["target_mean"]), float(data["target_std"]), dict(data.get("extra", {})))


class InputTransform(nn.Module):
    """Raw (n, 12) → model inputs (n, 13): 10 normal scores, sin/cos of key, centred mode.

    The normal scores are a piecewise-linear empirical CDF followed by the inverse normal
    CDF (a quantile-to-normal transform), differentiable between knots.
    """

    n_outputs = len(CONTINUOUS) + 3
    # which raw characteristic each output column comes from (for grouping attributions)
    output_groups = tuple(list(CONTINUOUS) + [KEY_INDEX, KEY_INDEX, MODE_INDEX])

    def __init__(self, prep: Preprocessing):
        super().__init__()
        width = max(len(k) for k in prep.knots)
        knots = np.zeros((len(prep.knots), width))
        levels = np.zeros_like(knots)
        for j, (k, lv) in enumerate(zip(prep.knots, prep.levels)):
            pad = width - len(k)
            # pad with strictly increasing knots at the top level so searchsorted stays valid
            knots[j] = np.concatenate([k, k[-1] + 1e-6 * (1 + np.arange(pad))])
            levels[j] = np.concatenate([lv, np.full(pad, lv[-1])])
        self.register_buffer("knots", torch.tensor(knots, dtype=torch.float32), persistent=False)
        self.register_buffer("levels", torch.tensor(levels, dtype=torch.float32), persistent=False)
        self.register_buffer("continuous", torch.tensor(CONTINUOUS), persistent=False)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        x = raw[:, self.continuous].T.contiguous()  # (10, n)
        upper = torch.searchsorted(self.knots, x).clamp(1, self.knots.shape[1] - 1)
        x0, x1 = self.knots.gather(1, upper - 1), self.knots.gather(1, upper)
        l0, l1 = self.levels.gather(1, upper - 1), self.levels.gather(1, upper)
        t = ((x - x0) / (x1 - x0)).clamp(0.0, 1.0)
        cdf = (l0 + t * (l1 - l0)).clamp(EPS, 1 - EPS)
        normal = torch.special.ndtri(cdf).T  # (n, 10)
        angle = raw[:, KEY_INDEX] * (2 * torch.pi / 12)
        mode = raw[:, MODE_INDEX] - 0.5
        return torch.cat([normal, torch.sin(angle)[:, None], torch.cos(angle)[:, None], mode[:, None]], dim=1)


class EnsembleLinear(nn.Module):
    """``k`` independent linear layers applied in one batched matmul: (k, n, i) → (k, n, o)."""

    def __init__(self, k: int, d_in: int, d_out: int):
        super().__init__()
        bound = 1 / d_in**0.5
        self.weight = nn.Parameter(torch.empty(k, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(k, 1, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class MLPEnsemble(nn.Module):
    """``n_members`` independent MLPs (ReLU, dropout) trained together, outputs averaged.

    Input (n, d_in) → output (n,), in standardised target units. ``member_outputs``
    gives (n_members, n) for training each member on its own loss.
    """

    def __init__(self, d_in: int, hidden: tuple[int, ...] = (64, 64), n_members: int = 5, dropout: float = 0.1):
        super().__init__()
        layers: list[nn.Module] = []
        width = d_in
        for size in hidden:
            layers += [EnsembleLinear(n_members, width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(EnsembleLinear(n_members, width, 1))
        self.layers = nn.Sequential(*layers)
        self.n_members = n_members

    def member_outputs(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.unsqueeze(0).expand(self.n_members, -1, -1)).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.member_outputs(x).mean(0)


ARCHITECTURES: dict[str, type[nn.Module]] = {"mlp_ensemble": MLPEnsemble}


class ViralityModel(nn.Module):
    """Raw characteristics (n, 12) → popularity points (n,), unclipped.

    ``transform`` then ``backbone`` then de-standardisation. ``backbone`` maps
    (n, 13) → (n,) and may expose ``member_outputs`` for ensemble training.
    """

    def __init__(self, prep: Preprocessing, arch: str, arch_kwargs: dict):
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
        self.transform = InputTransform(prep)
        self.backbone = ARCHITECTURES[arch](d_in=InputTransform.n_outputs, **arch_kwargs)
        self.arch, self.arch_kwargs, self.preprocessing = arch, dict(arch_kwargs), prep
        self.register_buffer("target_mean", torch.tensor(prep.target_mean), persistent=False)
        self.register_buffer("target_std", torch.tensor(prep.target_std), persistent=False)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.transform(raw)) * self.target_std + self.target_mean
