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

from virality.features import CONTINUOUS, FEATURE_NAMES, KEY_INDEX, MODE_INDEX

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
        knots, levels = zip(*(quantile_knots(np.quantile(X[:, column], probs)) for column in CONTINUOUS))
        return cls(list(knots), list(levels), float(np.mean(y)), float(np.std(y) or 1.0))

    def to_dict(self) -> dict:
        """Plain dict of lists/floats: safe to joblib-dump and to compare."""
        return {"knots": [k.tolist() for k in self.knots], "levels": [v.tolist() for v in self.levels],
                "target_mean": self.target_mean, "target_std": self.target_std, "extra": self.extra}

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        return cls([np.asarray(k) for k in data["knots"]], [np.asarray(v) for v in data["levels"]],
                   float(data["target_mean"]), float(data["target_std"]), dict(data.get("extra", {})))


def quantile_knots(quantiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One characteristic's quantiles at evenly spaced levels 0…1 (k,) → (knots, levels) of a
    strictly increasing, invertible map: tied quantiles (e.g. the many zeros of
    instrumentalness) become one knot at their mean level; a constant column gets a second
    knot 1e-6 above it. Shared by the model's input transform and What-if's quantile units."""
    probs = np.linspace(0.0, 1.0, len(quantiles))
    unique, inverse = np.unique(np.asarray(quantiles, np.float64), return_inverse=True)
    levels = np.bincount(inverse, weights=probs) / np.bincount(inverse)
    if len(unique) == 1:
        unique, levels = np.array([unique[0], unique[0] + 1e-6]), np.array([0.0, 1.0])
    return unique, levels


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


def _mlp_stack(k: int, d_in: int, hidden: tuple[int, ...], dropout: float) -> nn.Sequential:
    """``k`` independent MLPs (d_in → hidden… → 1) as one batched stack: (k, n, d_in) → (k, n, 1).

    Every ReLU is its own module instance (Captum's DeepLift needs that)."""
    layers: list[nn.Module] = []
    width = d_in
    for size in hidden:
        layers += [EnsembleLinear(k, width, size), nn.ReLU(), nn.Dropout(dropout)]
        width = size
    layers.append(EnsembleLinear(k, width, 1))
    return nn.Sequential(*layers)


class MLPEnsemble(nn.Module):
    """``n_members`` independent MLPs (ReLU, dropout) trained together, outputs averaged.

    Input (n, d_in) → output (n,), in standardised target units. ``member_outputs``
    gives (n_members, n) for training each member on its own loss.
    """

    def __init__(self, d_in: int, hidden: tuple[int, ...] = (64, 64), n_members: int = 5, dropout: float = 0.1):
        super().__init__()
        self.layers = _mlp_stack(n_members, d_in, tuple(hidden), dropout)
        self.n_members = n_members

    def member_outputs(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.unsqueeze(0).expand(self.n_members, -1, -1)).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.member_outputs(x).mean(0)


def _column_groups() -> list[list[int]]:
    """Transformed columns of each raw characteristic, in ``FEATURE_NAMES`` order (key → 2)."""
    groups = InputTransform.output_groups
    return [[c for c, g in enumerate(groups) if g == raw] for raw in range(len(FEATURE_NAMES))]


def _gather_matrix(column_sets: list[list[int]], d_in: int, width: int) -> torch.Tensor:
    """(k, d_in, width) 0/1 matrix: batch-multiplying (n, d_in) by it gives each subnet's
    columns, zero-padded to ``width``. A fixed linear map, so DeepLift passes through it."""
    gather = torch.zeros(len(column_sets), d_in, width)
    for k, columns in enumerate(column_sets):
        for slot, column in enumerate(columns):
            gather[k, column, slot] = 1.0
    return gather


class AdditiveNetwork(nn.Module):
    """Neural additive model with pairwise interactions (NAM / GA²M style).

    output = bias + Σ_j f_j(characteristic j) + Σ_(a,b) g_ab(characteristic a, characteristic b),
    each ``f_j`` / ``g_ab`` a small ReLU subnet (key's sin/cos columns feed one subnet), each
    the average of ``n_members`` independently initialised copies. ``pairs`` are raw
    characteristic index pairs (chosen by ``rank_pairs`` before training). Input (n, 13)
    transformed columns → output (n,) standardised; ``terms`` gives every term's (n,) part.
    """

    def __init__(self, d_in: int, hidden: tuple[int, ...] = (16, 16), pair_hidden: tuple[int, ...] = (16, 16),
                 pairs: list | tuple = (), n_members: int = 4, dropout: float = 0.0):
        super().__init__()
        groups = _column_groups()
        self.pairs = [tuple(int(v) for v in p) for p in pairs]
        self.n_members, self.n_mains = n_members, len(groups)
        mains = [cols for cols in groups for _ in range(n_members)]
        self.register_buffer("main_gather", _gather_matrix(mains, d_in, 2), persistent=False)
        self.mains = _mlp_stack(len(mains), 2, tuple(hidden), dropout)
        if self.pairs:
            pair_cols = [groups[a] + groups[b] for a, b in self.pairs for _ in range(n_members)]
            self.register_buffer("pair_gather", _gather_matrix(pair_cols, d_in, 4), persistent=False)
            self.pair_nets = _mlp_stack(len(pair_cols), 4, tuple(pair_hidden), dropout)
        self.bias = nn.Parameter(torch.zeros(1))

    def member_terms(self, x: torch.Tensor) -> torch.Tensor:
        """(n, 13) → (n_members, n, n_terms): each member's contribution of every term."""
        parts = [self.mains(torch.einsum("nd,kdw->knw", x, self.main_gather)).squeeze(-1)]
        if self.pairs:
            parts.append(self.pair_nets(torch.einsum("nd,kdw->knw", x, self.pair_gather)).squeeze(-1))
        stacked = torch.cat([p.reshape(-1, self.n_members, x.shape[0]) for p in parts], dim=0)  # (terms, m, n)
        return stacked.permute(1, 2, 0)

    def terms(self, x: torch.Tensor) -> torch.Tensor:
        """(n, 13) → (n, 12 + n_pairs): main effects in ``FEATURE_NAMES`` order, then pairs."""
        return self.member_terms(x).mean(0)

    def member_outputs(self, x: torch.Tensor) -> torch.Tensor:
        return self.member_terms(x).sum(-1) + self.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.member_outputs(x).mean(0)


class TabMNetwork(nn.Module):
    """A TabM-mini style ensemble over per-column numeric embeddings.

    Each of the ``d_in`` columns gets its own linear+ReLU embedding of width ``d_embed``
    (the "LR" embedding of Gorishniy et al. 2022); the flattened embeddings go through
    ``n_members`` MLPs that share their weights but each scale the input by its own
    adapter vector (TabM-mini, Gorishniy et al. 2024) and have their own output head.
    Input (n, d_in) → output (n,), standardised; ``member_outputs`` → (n_members, n).
    """

    def __init__(self, d_in: int, d_embed: int = 8, hidden: tuple[int, ...] = (64, 64), n_members: int = 8,
                 dropout: float = 0.1):
        super().__init__()
        self.embed_weight = nn.Parameter(torch.randn(d_in, d_embed))
        self.embed_bias = nn.Parameter(torch.randn(d_in, d_embed) * 0.5)
        self.embed_act = nn.ReLU()
        width = d_in * d_embed
        self.adapter = nn.Parameter(torch.where(torch.rand(n_members, 1, width) < 0.5, -1.0, 1.0))
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        self.shared = nn.Sequential(*layers)
        self.heads = EnsembleLinear(n_members, width, 1)
        self.n_members = n_members

    def member_outputs(self, x: torch.Tensor) -> torch.Tensor:
        embedded = self.embed_act(x[:, :, None] * self.embed_weight + self.embed_bias).flatten(1)  # (n, d_in·e)
        hidden = self.shared(embedded[None] * self.adapter)  # (k, n, h)
        return self.heads(hidden).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.member_outputs(x).mean(0)


class Blend(nn.Module):
    """Several backbones trained together as one ensemble, outputs averaged.

    ``parts``: ``[{"arch": name, "arch_kwargs": {...}}, …]``. ``member_outputs`` stacks every
    part's members, so each member is trained on its own loss; the output is the mean over
    parts of each part's mean. Input (n, d_in) → (n,) standardised.
    """

    def __init__(self, d_in: int, parts: list[dict]):
        super().__init__()
        self.parts = nn.ModuleList([ARCHITECTURES[p["arch"]](d_in=d_in, **p.get("arch_kwargs", {})) for p in parts])

    def member_outputs(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([part.member_outputs(x) for part in self.parts], dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([part(x) for part in self.parts], dim=0).mean(0)


ARCHITECTURES: dict[str, type[nn.Module]] = {"mlp_ensemble": MLPEnsemble, "additive": AdditiveNetwork,
                                             "tabm": TabMNetwork, "blend": Blend}


def rank_pairs(z: np.ndarray, residual: np.ndarray, n_pairs: int, n_bins: int = 5, min_count: int = 10) -> list:
    """Pick the ``n_pairs`` characteristic pairs whose joint bins explain most of ``residual``.

    A FAST-style screen (Lou et al. 2013): ``z`` (n, 13) transformed inputs, ``residual``
    (n,) what the main effects left. Each characteristic is cut into ``n_bins`` quantile
    bins (key by its sin/cos quadrant-free angle bins, mode by its two values); for every
    pair, the residual variance explained by the pair's cell means, minus what each
    characteristic's own bins explain, scores the pair. Returns ``[[a, b], …]`` raw indices.
    """
    codes = _bin_codes(z, n_bins)
    gains = []
    n_feat = codes.shape[1]
    for a in range(n_feat):
        for b in range(a + 1, n_feat):
            joint = codes[:, a] * (n_bins + 1) + codes[:, b]
            gain = _explained(joint, residual, min_count) - max(_explained(codes[:, a], residual, min_count),
                                                                 _explained(codes[:, b], residual, min_count))
            gains.append((gain, a, b))
    gains.sort(reverse=True)
    return [[a, b] for _, a, b in gains[:n_pairs]]


def _bin_codes(z: np.ndarray, n_bins: int) -> np.ndarray:
    """(n, 13) transformed → (n, 12) integer bin of each raw characteristic."""
    groups = _column_groups()
    codes = np.zeros((len(z), len(groups)), dtype=int)
    for j, cols in enumerate(groups):
        value = np.arctan2(z[:, cols[0]], z[:, cols[1]]) if len(cols) == 2 else z[:, cols[0]]
        edges = np.unique(np.quantile(value, np.linspace(0, 1, n_bins + 1)[1:-1]))
        codes[:, j] = np.searchsorted(edges, value, side="right")
    return codes


def _explained(code: np.ndarray, residual: np.ndarray, min_count: int) -> float:
    """Sum of squares of ``residual`` explained by the means of cells with ≥ ``min_count`` rows."""
    _, inverse, counts = np.unique(code, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=residual)
    keep = counts >= min_count
    return float(np.sum(sums[keep] ** 2 / counts[keep]))


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
