"""All training hyperparameters in one place, and where the project's files live.

The resolved config is saved in metadata.json. Nothing here imports torch: ``python -m virality
--help`` reads ``ARTIFACTS_DIR`` from this module.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path

from virality.model.interval import INTERVAL_FORMS

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = ROOT / "artifacts"  # the shipped model bundle
ADDITIVE_DIR = ARTIFACTS_DIR / "additive"  # the additive network drawn on the Model page
DEMO_CSV = ROOT / "examples" / "demo_tracks.csv"  # invented demo tracks
RESULTS_DIR = ROOT / "benchmarks" / "results"  # committed benchmark results the app quotes


# Per-architecture recipes (what `python -m virality train --arch NAME` uses): each network's
# first configuration in benchmarks/models.py NEURAL_GRIDS; anything not named takes TrainConfig's
# default. The shipped "blend" trains the MLP ensemble and TabM as one 16-member ensemble.
_MLP = {"hidden": (32, 32), "n_members": 8, "dropout": 0.2}
_TABM = {"d_embed": 8, "hidden": (64, 64), "n_members": 8, "dropout": 0.3}
PRESETS: dict[str, dict] = {
    "mlp_ensemble": {"arch_kwargs": _MLP},
    "additive": {"arch_kwargs": {"hidden": (16, 16), "pair_hidden": (16, 16), "n_members": 4, "dropout": 0.1},
                 "lr": 1e-3, "weight_decay": 0.05, "n_pairs": 4},
    "tabm": {"arch_kwargs": _TABM, "lr": 3e-4},
    "blend": {"arch_kwargs": {"parts": [{"arch": "mlp_ensemble", "arch_kwargs": _MLP},
                                        {"arch": "tabm", "arch_kwargs": _TABM}]}, "lr": 3e-4},
}
SHIPPED_ARCH = "blend"


@dataclass
class TrainConfig:
    seed: int = 0  # seeds the split, the weight init and the batch order
    val_fraction: float = 0.15  # tracks that stop the shipped model's training early
    test_fraction: float = 0.15  # tracks never seen in training: the reported metrics
    # key of virality.model.networks.ARCHITECTURES: the shipped blend, the best network on
    # grouped-CV RMSE (benchmarks/results/models.md), with its preset's layers
    arch: str = SHIPPED_ARCH
    arch_kwargs: dict = field(default_factory=lambda: copy.deepcopy(PRESETS[SHIPPED_ARCH]["arch_kwargs"]))
    n_pairs: int = 4  # additive network only: interaction pairs kept by the FAST-style screen
    n_quantiles: int = 101  # knots of the quantile-to-normal input transform
    lr: float = 3e-4  # AdamW learning rate
    weight_decay: float = 1e-2  # AdamW decoupled weight decay
    batch_size: int = 128
    max_epochs: int = 300
    patience: int = 30  # epochs without validation improvement before stopping
    interval_level: float = 0.8  # coverage of the prediction interval
    # The interval is calibrated on out-of-fold scores of every non-test track (cross-fitting):
    # this many grouped inner folds, each fold scored by a model trained on the others
    # (configured as above) and early-stopped on its own hold-out of this share of them.
    # These models exist only for calibration; the shipped model is trained as above.
    calibration_folds: int = 5
    calibration_stop_fraction: float = 0.15
    # shapes the interval's ends may take (virality.metrics.INTERVAL_FORMS: polynomial or
    # piecewise-linear in the score); the one whose coverage per decile of score is closest to
    # interval_level in repeated cross-validation over the calibration tracks is used
    interval_forms: tuple = INTERVAL_FORMS
    interval_selection_folds: int = 5  # folds of that cross-validation
    interval_selection_repeats: int = 3  # its repeats with reshuffled folds (averaged: less noise)
    threads: int = 1  # torch CPU threads while training: these nets are tiny, a 2nd thread only adds contention

    def to_dict(self) -> dict:
        data = asdict(self)
        data["interval_forms"] = list(self.interval_forms)
        data["arch_kwargs"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.arch_kwargs.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "interval_forms" in known:
            known["interval_forms"] = tuple(known["interval_forms"])
        return cls(**known)


def preset(arch: str, **overrides) -> TrainConfig:
    """``TrainConfig`` for architecture ``arch`` with its preset, then ``overrides``."""
    if arch not in PRESETS:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(PRESETS)}")
    return TrainConfig(**{"arch": arch, **copy.deepcopy(PRESETS[arch]), **overrides})
