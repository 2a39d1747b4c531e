"""TikTok popularity: a network pretrained on the catalogue's popularity, then fine-tuned, vs the same from scratch.

    python -m benchmarks.pretrain --data ../shared/data/tiktok_tracks.csv --catalogue ../shared/data/spotify_songs.csv
    python -m benchmarks.pretrain --quick --out /tmp/x      # seconds: the test's run on a subsample

Target: ``popularity`` of the TikTok tracks (``load_fit_data``'s TikTok side, i.e. ``load_tracks``:
one row per ``track_id``, popularity the median over its rows). Outer folds: 5 folds grouped by
song (``group_kfold`` over ``FitData.groups``: ``track_id`` or lower-cased name + artist, across both
files) × seeds 0, 1, 2. Arms, every choice made inside the outer training fold only:

* ``scratch``: a ``ViralityModel`` with the ``mlp_ensemble`` backbone (``NETWORK``: one
  256-256 ReLU MLP, as in the exploratory script) trained by ``fit_model`` on the training fold;
  dropout from ``DROPOUTS`` chosen, and training early-stopped, on one grouped inner validation
  split of the training fold (``benchmarks.models.Fold.inner_split``, 15 %).
* ``pretrained``: the same network first trained by ``fit_model`` on the catalogue's
  ``track_popularity`` (every catalogue track that shares no song with any TikTok track),
  early-stopped on a grouped 10 % of the catalogue; its input transform is the catalogue's, so the
  pretraining sees no TikTok track and is done once per (seed, dropout). Then fine-tuned
  (``continue_training``: all weights, learning rate / 3, target standardised by the TikTok
  training tracks' mean and std, the catalogue's input transform kept) on the training fold; the
  dropout chosen and training early-stopped on the same inner split as ``scratch``.
* ``forest``: ``benchmarks.models.run_forest`` (the models benchmark's random forest, leaf size by
  out-of-bag error on the training fold).
* ``mean``: the training fold's mean popularity.

Predictions are clipped to 0–100. Reports R², RMSE, MAE per arm (mean ± std over the folds ×
seeds) and the paired RMSE differences pretrained − scratch and pretrained − forest per (seed,
fold): mean, std, a standard error that treats folds as independent (a lower bound) and the
folds pretrained is better in. Writes ``<out>/pretrain.{md,json}`` (no rows of the data).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import DEFAULT_DATA, RESULTS, parser, run_all, write_result
from benchmarks.models import Fold, run_forest, run_mean
from virality.config import TrainConfig
from virality.data.catalogue import load_fit_data
from virality.data.tracks import TARGET, group_kfold, group_split
from virality.model.metrics import regression_metrics
from virality.model.networks import Preprocessing, ViralityModel
from virality.model.training import continue_training, fit_model, predict_numpy

DEFAULT_CATALOGUE = DEFAULT_DATA.with_name("spotify_songs.csv")
ARMS = ("scratch", "pretrained", "forest", "mean")
METRICS = ("r2", "rmse", "mae")
NETWORK = {"arch": "mlp_ensemble", "arch_kwargs": {"hidden": (256, 256), "n_members": 1}, "lr": 1e-3,
           "weight_decay": 1e-2, "batch_size": 256, "max_epochs": 200, "threads": 1}
DROPOUTS = (0.1, 0.3)
PRETRAIN_PATIENCE, TIKTOK_PATIENCE = 8, 10  # epochs without a better validation RMSE before stopping
FINE_TUNE_LR_FACTOR = 1 / 3
CATALOGUE_STOP = 0.1  # share of the catalogue's songs that stops the pretraining early
QUICK = {"max_epochs": 3, "patience": 2}
QUICK_TIKTOK, QUICK_CATALOGUE = 400, 2000


@dataclasses.dataclass
class Side:
    """One file's tracks: raw (n, 12) characteristics, (n,) popularity, (n,) song groups."""

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray

    def subsample(self, n: int, seed: int = 0) -> Side:
        keep = np.sort(np.random.default_rng(seed).choice(len(self.y), min(n, len(self.y)), replace=False))
        return Side(self.X[keep], self.y[keep], self.groups[keep])


def load_sides(tiktok_path: str | Path, catalogue_path: str | Path) -> tuple[Side, Side, dict]:
    """Both files (``load_fit_data``) → (TikTok side, catalogue side without any song that is also
    on the TikTok side, what was read and dropped)."""
    data = load_fit_data(tiktok_path, catalogue_path)
    X, y, groups, tiktok = data.X, data.table[TARGET].to_numpy(np.float64), data.groups, data.y == 1
    shared = ~tiktok & np.isin(groups, groups[tiktok])
    catalogue = ~tiktok & ~shared
    info = {"sources": data.sources, "catalogue_tracks_sharing_a_song_with_tiktok": int(shared.sum())}
    return Side(X[tiktok], y[tiktok], groups[tiktok]), Side(X[catalogue], y[catalogue], groups[catalogue]), info


def network_config(dropout: float, seed: int, quick: bool, **overrides) -> TrainConfig:
    """The network's ``TrainConfig`` (``NETWORK``) with this dropout and seed."""
    settings = {**NETWORK, **(QUICK if quick else {}), **overrides}
    settings["arch_kwargs"] = {**settings["arch_kwargs"], "dropout": dropout}
    return TrainConfig(seed=seed, **settings)


def pretrain(catalogue: Side, seed: int, dropout: float, quick: bool) -> tuple[ViralityModel, dict]:
    """The network trained on the catalogue's popularity, early-stopped on a grouped
    ``CATALOGUE_STOP`` of its songs → (model, its history without the per-epoch curve)."""
    torch.set_num_threads(1)
    fit, stop = group_split(catalogue.groups, (1 - CATALOGUE_STOP, CATALOGUE_STOP), seed)
    config = network_config(dropout, seed, quick, patience=QUICK["patience"] if quick else PRETRAIN_PATIENCE)
    model, history = fit_model(catalogue.X[fit], catalogue.y[fit], catalogue.X[stop], catalogue.y[stop], config,
                               progress=False)
    history.pop("val_rmse")
    print(f"seed {seed} pretrained dropout {dropout}: stop RMSE {history['best_val_rmse']:.3f} "
          f"after {history['epochs_run']} epochs", flush=True)
    return model, {"seed": seed, "dropout": dropout, **history}


def rescaled(pretrained: ViralityModel, y_train: np.ndarray) -> ViralityModel:
    """A copy of ``pretrained`` (backbone weights, input transform) whose output is de-standardised
    by the mean and std of ``y_train`` (n,) popularity instead of the catalogue's."""
    prep = pretrained.preprocessing
    start = ViralityModel(Preprocessing(prep.knots, prep.levels, float(np.mean(y_train)), float(np.std(y_train) or 1.0)),
                          pretrained.arch, pretrained.arch_kwargs)
    start.load_state_dict(pretrained.state_dict())
    return start


def best_network(fold: Fold, train_one) -> tuple[np.ndarray, dict]:
    """``train_one(dropout, X_fit, y_fit, X_val, y_val)`` → (model, history) for every dropout on the
    fold's inner split; the one with the lowest validation RMSE scores the test fold."""
    fit, val = fold.inner_split()
    best = None
    for dropout in DROPOUTS:
        model, history = train_one(dropout, fold.X_train[fit], fold.y_train[fit], fold.X_train[val], fold.y_train[val])
        if best is None or history["best_val_rmse"] < best[0]:
            best = (history["best_val_rmse"], model, {"dropout": dropout, "epochs": history["best_epoch"] + 1,
                                                      "inner_rmse": history["best_val_rmse"]})
    return predict_numpy(best[1], fold.X_test), best[2]


def run_fold(tiktok: Side, task: tuple, pretrained: dict, quick: bool) -> dict:
    """One (seed, outer fold): arm → record (seed, fold, metrics, what was chosen, seconds)."""
    seed, k, train, test = task
    torch.set_num_threads(1)
    if set(tiktok.groups[train]) & set(tiktok.groups[test]):
        raise AssertionError("a song sits on both sides of an outer fold")
    fold = Fold(tiktok.X[train], tiktok.y[train], tiktok.groups[train], tiktok.X[test], tiktok.y[test], seed, quick)
    patience = QUICK["patience"] if quick else TIKTOK_PATIENCE

    def scratch(dropout, X_fit, y_fit, X_val, y_val):
        return fit_model(X_fit, y_fit, X_val, y_val, network_config(dropout, seed, quick, patience=patience), False)

    def fine_tuned(dropout, X_fit, y_fit, X_val, y_val):
        config = network_config(dropout, seed, quick, patience=patience, lr=NETWORK["lr"] * FINE_TUNE_LR_FACTOR)
        return continue_training(rescaled(pretrained[dropout], y_fit), X_fit, y_fit, X_val, y_val, config)

    arms = {"scratch": lambda: best_network(fold, scratch), "pretrained": lambda: best_network(fold, fine_tuned),
            "forest": lambda: run_forest(fold), "mean": lambda: run_mean(fold)}
    out = {}
    for name in ARMS:
        started = time.perf_counter()
        pred, chosen = arms[name]()
        out[name] = {"seed": seed, "fold": k, "seconds": time.perf_counter() - started, "chosen": chosen,
                     "train_mean": float(fold.y_train.mean()), **regression_metrics(fold.y_test, np.clip(pred, 0, 100))}
    print(f"seed {seed} fold {k}: " + "  ".join(f"{n} {r['rmse']:.3f}" for n, r in out.items()), flush=True)
    return out


def summarise(records: dict) -> dict:
    return {name: {m: {"mean": float(np.mean([r[m] for r in rs])), "std": float(np.std([r[m] for r in rs]))}
                   for m in METRICS} | {"seconds_per_fold": float(np.median([r["seconds"] for r in rs]))}
            for name, rs in records.items()}


def paired(records: dict, a: str, b: str) -> dict:
    """RMSE(a) − RMSE(b) per (seed, fold): mean, std, standard error (folds as independent: a lower
    bound), how many folds ``a`` is better (lower RMSE) in."""
    diff = np.array([x["rmse"] - y["rmse"] for x, y in zip(records[a], records[b])])
    return {"mean": float(diff.mean()), "std": float(diff.std()),
            "se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0,
            "better": int((diff < 0).sum()), "n": len(diff)}


def markdown(summary: dict, comparison: dict, meta: dict) -> str:
    lines = [f"# TikTok popularity: pretrained on the catalogue, then fine-tuned, vs from scratch ({meta['folds']}-fold "
             f"CV grouped by song × {len(meta['seeds'])} seeds, {meta['tiktok_tracks']:,} TikTok tracks, "
             f"{meta['catalogue_tracks']:,} catalogue tracks for pretraining{', QUICK sample' if meta['quick'] else ''})",
             "", "Popularity points on unseen TikTok tracks; mean ± std over folds × seeds.", "",
             "| arm | RMSE | R² | MAE | s / fold |", "|---|---|---|---|---|"]
    for name, e in summary.items():
        lines.append(f"| {name} | {e['rmse']['mean']:.3f} ± {e['rmse']['std']:.3f} | {e['r2']['mean']:.4f} ± "
                     f"{e['r2']['std']:.4f} | {e['mae']['mean']:.3f} ± {e['mae']['std']:.3f} | "
                     f"{e['seconds_per_fold']:.0f} |")
    lines += ["", "RMSE differences paired by fold (negative: pretrained is better):", "",
              "| | mean | std | s.e. | pretrained better in |", "|---|---|---|---|---|"]
    for key, d in comparison.items():
        lines.append(f"| {key.replace('_minus_', ' − ')} | {d['mean']:+.3f} | {d['std']:.3f} | {d['se']:.3f} | "
                     f"{d['better']}/{d['n']} |")
    pre = meta["pretraining"]
    lines += ["", f"Pretraining on the catalogue: stop-set RMSE {min(p['best_val_rmse'] for p in pre):.2f}–"
              f"{max(p['best_val_rmse'] for p in pre):.2f} points after {min(p['epochs_run'] for p in pre)}–"
              f"{max(p['epochs_run'] for p in pre)} epochs ({len(pre)} runs: seeds × dropouts; "
              f"{meta['pretrain_seconds']:.0f} s).",
              "", f"Command: `{meta['command']}` ({meta['total_seconds']:.0f} s, {meta['jobs']} processes; load average "
              f"{meta['load_average'][0]:.1f} at the start, {meta['load_average'][1]:.1f} at the end)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--catalogue", default=str(DEFAULT_CATALOGUE), help="catalogue CSV (spotify_songs.csv)")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_TIKTOK} TikTok and {QUICK_CATALOGUE:,} catalogue tracks, 2 folds, 1 seed, 3 epochs")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--jobs", type=int, default=2, help="processes in parallel (default 2: the 2 cores)")
    p.add_argument("--out", default=str(RESULTS), help="folder for pretrain.{md,json}")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    tiktok, catalogue, info = load_sides(args.data, args.catalogue)
    seeds, n_folds = ([0], 2) if args.quick else (list(range(args.seeds)), args.folds)
    jobs = 1 if args.quick else max(1, min(args.jobs, 2))
    if args.quick:
        tiktok, catalogue = tiktok.subsample(QUICK_TIKTOK), catalogue.subsample(QUICK_CATALOGUE)
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    pretrain_tasks = [(seed, dropout, args.quick) for seed in seeds for dropout in DROPOUTS]
    pretrained_runs = run_all(pretrain_tasks, jobs, pretrain, catalogue)
    pretrained = {seed: {dropout: model for (s, dropout, _), (model, _) in zip(pretrain_tasks, pretrained_runs)
                         if s == seed} for seed in seeds}
    pretrain_seconds = time.perf_counter() - started
    tasks = [((seed, k, train, test), pretrained[seed], args.quick) for seed in seeds
             for k, (train, test) in enumerate(group_kfold(tiktok.groups, n_folds, seed))]
    outputs = run_all(tasks, jobs, run_fold, tiktok)
    records = {name: [out[name] for out in outputs] for name in ARMS}
    summary = summarise(records)
    comparison = {"pretrained_minus_scratch": paired(records, "pretrained", "scratch"),
                  "pretrained_minus_forest": paired(records, "pretrained", "forest")}
    meta = {"folds": n_folds, "seeds": seeds, "quick": args.quick, "jobs": jobs, **info,
            "tiktok_tracks": len(tiktok.y), "tiktok_songs": int(len(np.unique(tiktok.groups))),
            "catalogue_tracks": len(catalogue.y), "network": {**NETWORK, "dropouts": list(DROPOUTS),
                                                              "pretrain_patience": PRETRAIN_PATIENCE,
                                                              "tiktok_patience": TIKTOK_PATIENCE,
                                                              "fine_tune_lr_factor": FINE_TUNE_LR_FACTOR,
                                                              "catalogue_stop": CATALOGUE_STOP,
                                                              **({"quick": QUICK} if args.quick else {})},
            "pretraining": [history for _, history in pretrained_runs], "pretrain_seconds": round(pretrain_seconds, 1),
            "command": "python -m benchmarks.pretrain --data PATH --catalogue PATH" + (" --quick" if args.quick else ""),
            "total_seconds": round(time.perf_counter() - started, 1), "load_average": [load_start, os.getloadavg()[0]]}
    write_result("pretrain", {"meta": meta, "arms": summary, "paired": comparison, "records": records},
                 markdown(summary, comparison, meta), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
