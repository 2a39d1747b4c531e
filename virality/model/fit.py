"""TikTok fit: how much a song's characteristics resemble tracks that trend on TikTok rather than
the wider Spotify catalogue, as a calibrated probability (0–100 %) under equal priors.

The network is the project's own kind (``ViralityModel``: the quantile-normal input transform and
an MLP ensemble backbone) with a logit out, trained with a class-balanced logistic loss (each side
weighs half, so the output is the probability as if TikTok and catalogue tracks were equally
common). Recipe (``train_fit``): ``FitConfig.folds`` folds grouped by song and stratified by side;
one part per fold trains on the other folds and early-stops on its own fold, whose tracks it then
scores. Platt scaling (``a·logit + b``), fitted to those out-of-fold logits with the same balanced
weights, calibrates them; the shipped model averages the parts' calibrated probabilities. The
out-of-fold probabilities are the bundle's quoted figures (AUC, log loss, Brier, ECE; overall and
against catalogue tracks from 2017 on) and give the catalogue percentile.

What it is not: a promise of going viral. The two sides differ in era (the catalogue reaches back
decades) and genre (six genre playlists from 2020): see MODEL_CARD.md.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from virality.model.inference import EnsemblePlan, Forward, run_chunked
from virality.model.networks import MLPEnsemble, Preprocessing, ViralityModel

PERCENT = 100.0


@dataclass
class FitConfig:
    """The TikTok-fit recipe's settings (chosen on inner folds in /benchmarks/fit.py's search;
    resolved values are saved in metadata.json under ``fit.config``)."""

    seed: int = 0
    folds: int = 3  # cross-fitted parts: each early-stops on, and scores, its own fold
    arch: str = "mlp_ensemble"  # each part's backbone: "mlp_ensemble" or "tabm" (per-column embeddings)
    d_embed: int = 8  # tabm only: each column's embedding width
    hidden: tuple = (64, 64)  # each member's hidden layers
    n_members: int = 4  # independent MLPs per part, trained together (an MLP ensemble)
    dropout: float = 0.1
    lr: float = 2e-3  # AdamW
    weight_decay: float = 1e-2
    batch_size: int = 512
    max_epochs: int = 80
    patience: int = 8  # epochs without a better held-out balanced log loss before stopping
    n_quantiles: int = 201  # knots of the input transform (fitted on both sides' characteristics)
    threads: int = 1

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["hidden"] = list(self.hidden)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> FitConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "hidden" in known:
            known["hidden"] = tuple(known["hidden"])
        return cls(**known)

    def arch_kwargs(self) -> dict:
        kwargs = {"hidden": tuple(self.hidden), "n_members": self.n_members, "dropout": self.dropout}
        return kwargs | ({"d_embed": self.d_embed} if self.arch == "tabm" else {})


class TikTokFit(nn.Module):
    """Raw characteristics (n, 12) → TikTok fit in percent (n,): the mean over ``parts`` of
    100 · sigmoid(a · logit + b). Every part is a ``ViralityModel`` over the same input
    transform (``transform``), so attributions see the 12 characteristics as the user does."""

    def __init__(self, prep: Preprocessing, config: FitConfig, platt: tuple[float, float] = (1.0, 0.0)):
        super().__init__()
        self.config = config
        self.parts = nn.ModuleList([ViralityModel(prep, config.arch, config.arch_kwargs())
                                    for _ in range(config.folds)])
        self.transform = self.parts[0].transform
        self.register_buffer("platt", torch.tensor(platt, dtype=torch.float32))
        self.squash = nn.Sigmoid()  # a module, not torch.sigmoid: the Rescale DeepLift hooks it

    def head(self, z: torch.Tensor) -> torch.Tensor:
        """(n, 13) transformed inputs → (n,) percent."""
        logits = torch.stack([part.backbone(z) for part in self.parts])
        return PERCENT * self.squash(self.platt[0] * logits + self.platt[1]).mean(0)

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.head(self.transform(raw))


class FitHead(nn.Module):
    """A ``TikTokFit`` after its input transform, for the attribution methods: (n, 13) → (n,) percent."""

    def __init__(self, fit: TikTokFit):
        super().__init__()
        self.fit = fit

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fit.head(z)


def predict_percent(fit: TikTokFit, X: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """(n, 12) characteristics → (n,) TikTok fit in percent through the modules, chunked, no autograd."""
    return run_chunked(fit, X, chunk)


@torch.no_grad()
def fit_plan(fit: TikTokFit) -> Forward:
    """(n, 12) raw characteristics → (n,) TikTok fit in percent, as ``fit(raw)``; call it
    under ``torch.inference_mode()``. It copies the weights it rearranges: build a new plan after training."""
    if not isinstance(fit, TikTokFit):
        return fit
    backbones = [part.backbone for part in fit.parts]
    if not all(isinstance(b, MLPEnsemble) and b.n_members == backbones[0].n_members for b in backbones):
        return fit
    plan, per_part = EnsemblePlan(backbones), backbones[0].n_members
    a, b = fit.platt.clone()

    def forward(raw: torch.Tensor) -> torch.Tensor:
        logits = plan(fit.transform(raw)).view(len(backbones), per_part, len(raw)).mean(1)  # (parts, n)
        return PERCENT * torch.sigmoid(a * logits + b).mean(0)

    return forward


# ---------------------------------------------------------------- equal-prior metrics


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """(n,) weights with mean 1 that give each side (y = 1, y = 0) half the total: equal priors."""
    y = np.asarray(y)
    n_pos, n_neg = max(int((y == 1).sum()), 1), max(int((y == 0).sum()), 1)
    return np.where(y == 1, len(y) / (2 * n_pos), len(y) / (2 * n_neg))


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (ties count half); class weights do not change it."""
    y, p = np.asarray(y), np.asarray(p, float)
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    ranks = (np.bincount(inverse, weights=ranks) / counts)[inverse]  # average ranks of ties
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if not n_pos or not n_neg:
        return float("nan")
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def calibration_bins(y: np.ndarray, p: np.ndarray, n_bins: int = 15) -> list[dict]:
    """Reliability curve under equal priors: per equal-width bin of ``p`` (0–1), the weighted mean
    predicted, the weighted share that is TikTok, the bin's share of the weight and its count."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    w = balanced_weights(y)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    out = []
    for b in range(n_bins):
        m = bins == b
        if m.any():
            out.append({"low": b / n_bins, "high": (b + 1) / n_bins, "predicted": float(np.average(p[m], weights=w[m])),
                        "observed": float(np.average(y[m], weights=w[m])), "weight": float(w[m].sum() / w.sum()),
                        "n": int(m.sum())})
    return out


def fit_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, log loss, Brier score and expected calibration error (15 equal-width bins) of
    probabilities ``p`` (0–1) for sides ``y``, every figure weighted for equal priors."""
    y, p = np.asarray(y, float), np.clip(np.asarray(p, float), 1e-7, 1 - 1e-7)
    w = balanced_weights(y)
    bins = calibration_bins(y, p)
    return {"auc": auc(y, p),
            "log_loss": float(-np.average(y * np.log(p) + (1 - y) * np.log(1 - p), weights=w)),
            "brier": float(np.average((p - y) ** 2, weights=w)),
            "ece": float(sum(b["weight"] * abs(b["observed"] - b["predicted"]) for b in bins))}


# ---------------------------------------------------------------- training


def fit_platt(logit: np.ndarray, y: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """Balanced Platt scaling: (a, b) minimising the equal-prior log loss of sigmoid(a·logit + b),
    by Newton steps on the two parameters."""
    logit, y = np.asarray(logit, float), np.asarray(y, float)
    w = balanced_weights(y)
    a, b = 1.0, 0.0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(a * logit + b)))
        gradient = np.array([np.sum(w * (p - y) * logit), np.sum(w * (p - y))])
        s = w * p * (1 - p)
        hessian = np.array([[np.sum(s * logit**2), np.sum(s * logit)], [np.sum(s * logit), np.sum(s)]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)


def stratified_group_folds(y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int) -> list[np.ndarray]:
    """``n_folds`` arrays of row positions: every group in exactly one fold, the groups of each side
    dealt round-robin in a seeded order so every fold holds about 1/n of each side."""
    rng = np.random.default_rng(seed)
    fold_of_group: dict = {}
    for side in (1, 0):  # a group belongs to the side of its first row (songs never span sides)
        side_groups = np.unique(groups[y == side])
        side_groups = side_groups[~np.isin(side_groups, list(fold_of_group))]
        for i, g in enumerate(rng.permutation(side_groups)):
            fold_of_group[g] = i % n_folds
    fold = np.array([fold_of_group[g] for g in groups])
    return [np.flatnonzero(fold == k) for k in range(n_folds)]


def _balanced_log_loss(logit: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> float:
    return float(nn.functional.binary_cross_entropy_with_logits(logit, y, weight=w, reduction="sum") / w.sum())


def fit_backbone(part: ViralityModel, z: torch.Tensor, batch_loss, held_out_loss, config: FitConfig, seed: int,
                 lr: float | None = None) -> dict:
    """Train ``part``'s backbone in place on (n, 13) transformed inputs ``z``: AdamW (``lr``,
    default ``config.lr``), batches of ``config.batch_size`` rows in a seeded order,
    ``batch_loss(member outputs (members, batch), the batch's row positions)`` on every member, early stopping on
    ``held_out_loss(backbone)`` (``config.patience``; best epoch restored). Returns its history:
    ``best_epoch``, ``best_loss``, ``epochs_run``."""
    torch.manual_seed(seed)  # dropout masks
    optimizer = torch.optim.AdamW(part.backbone.parameters(), lr=lr or config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    best = (np.inf, -1, None)
    for epoch in range(config.max_epochs):
        part.train()
        for batch in torch.randperm(len(z), generator=generator).split(config.batch_size):
            loss = batch_loss(part.backbone.member_outputs(z[batch]), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        part.eval()
        with torch.inference_mode():
            held_out = held_out_loss(part.backbone)
        if held_out < best[0] - 1e-5:
            best = (held_out, epoch, copy.deepcopy(part.backbone.state_dict()))
        elif epoch - best[1] >= config.patience:
            break
    part.backbone.load_state_dict(best[2])
    part.eval()
    return {"best_epoch": best[1], "best_loss": best[0], "epochs_run": epoch + 1}


def train_part(part: ViralityModel, X: np.ndarray, y: np.ndarray, X_stop: np.ndarray, y_stop: np.ndarray,
               config: FitConfig, seed: int) -> dict:
    """Train one part in place (``fit_backbone``): every member on its own balanced logistic
    loss, early stopping on the stop tracks' balanced log loss. Returns its history."""
    z = part.transform(torch.as_tensor(X, dtype=torch.float32))
    z_stop = part.transform(torch.as_tensor(X_stop, dtype=torch.float32))
    target, target_stop = (torch.as_tensor(v, dtype=torch.float32) for v in (y, y_stop))
    weight, weight_stop = (torch.as_tensor(balanced_weights(v), dtype=torch.float32) for v in (y, y_stop))

    def batch_loss(logits, batch):  # logits (members, batch)
        return nn.functional.binary_cross_entropy_with_logits(
            logits, target[batch].expand_as(logits), weight=weight[batch].expand_as(logits))

    history = fit_backbone(part, z, batch_loss, lambda backbone: _balanced_log_loss(
        backbone(z_stop), target_stop, weight_stop), config, seed)
    return {"best_epoch": history["best_epoch"], "best_log_loss": history["best_loss"], "epochs_run": history["epochs_run"]}


def train_fit(X: np.ndarray, y: np.ndarray, groups: np.ndarray, config: FitConfig | None = None,
              init=None) -> tuple[TikTokFit, np.ndarray, list[dict]]:
    """The recipe of the module doc on (n, 12) characteristics, (n,) sides (1 = TikTok) and (n,)
    song groups → (the model, (n,) out-of-fold probabilities 0–1, each part's history).
    ``init(part)``, if given, sets a part's starting weights (e.g. a pretrained backbone)."""
    config = config or FitConfig()
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        prep = Preprocessing.fit(X, np.zeros(len(X)), config.n_quantiles)
        prep = Preprocessing(prep.knots, prep.levels, 0.0, 1.0)  # the backbone's output is the logit itself
        torch.manual_seed(config.seed)  # the parts' initial weights
        fit = TikTokFit(prep, config)
        if init is not None:
            for part in fit.parts:
                init(part)
        folds = stratified_group_folds(y, groups, config.folds, config.seed)
        oof_logit, histories = np.zeros(len(y)), []
        for k, held in enumerate(folds):
            rest = np.setdiff1d(np.arange(len(y)), held)
            histories.append(train_part(fit.parts[k], X[rest], y[rest], X[held], y[held], config, config.seed + k))
            with torch.inference_mode():
                oof_logit[held] = fit.parts[k](torch.as_tensor(X[held], dtype=torch.float32)).numpy()
        a, b = fit_platt(oof_logit, y)
        fit.platt.copy_(torch.tensor([a, b]))
        fit.eval()
        for parameter in fit.parameters():
            parameter.requires_grad_(False)
        return fit, 1 / (1 + np.exp(-(a * oof_logit + b))), histories
    finally:
        torch.set_num_threads(threads)
