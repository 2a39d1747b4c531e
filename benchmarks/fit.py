"""TikTok fit on tracks it never saw: TikTok-trending vs catalogue, 5-fold CV grouped by song × 3 seeds.

    python -m benchmarks.fit --data ../shared/data/tiktok_tracks.csv --catalogue ../shared/data/spotify_songs.csv
    python -m benchmarks.fit --quick --out /tmp/x      # seconds: the test's run on a subsample

Outer folds: ``virality.model.fit.stratified_group_folds`` (groups = songs: ``track_id`` or
lower-cased name + artist, across both files), seeds 0, 1, 2. Every candidate sees only the outer
training fold, through one protocol, the shipped network's own (``train_fit``): the training fold
is cut into 3 inner folds grouped by song; 3 models each train on two and early-stop on (and
score) the third; a configuration of the candidate's menu is chosen by the class-balanced log loss
of those out-of-fold predictions after Platt scaling fitted on them; the outer test fold gets the
mean of the 3 models' calibrated probabilities. Candidates: logistic regression (cubic splines of
the quantile-normal scores, key on a circle, mode; C from the menu), LightGBM (leaves × child size
from the menu, early stopping), and the shipped network (``virality.model.fit``, its one recipe).
Experiments in the same protocol, chosen with ``--only`` (``NETWORKS``): ``network_tabm`` (TabM-mini
parts) and the ``_pretrained`` networks (every part starts from one backbone pretrained on the
training fold's catalogue popularity), paired against LightGBM and against their un-pretrained
selves; ``--name`` names the result file so an experiment does not replace ``fit.md``.

Metrics on each outer test fold, weighted so each side carries half (equal priors): AUC, log
loss, Brier, ECE (15 equal-width bins); and the same on the era check: test TikTok tracks against
test catalogue tracks released 2017 or later. Mean ± std over the 15 folds; the network's AUC
minus LightGBM's paired by fold (mean, std, standard error, folds better); the reliability curve
of the network pooled over test folds. Writes ``<out>/<name>.{md,json}`` (default ``fit``; no rows
of the data).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time

import numpy as np
import torch

from benchmarks.common import DEFAULT_DATA, RESULTS, parser, run_all, write_result
from virality.data.catalogue import ERA_YEAR, load_fit_data
from virality.model.fit import (
    FitConfig,
    balanced_weights,
    calibration_bins,
    fit_backbone,
    fit_metrics,
    fit_platt,
    predict_percent,
    stratified_group_folds,
    train_fit,
)
from virality.model.networks import InputTransform, Preprocessing

DEFAULT_CATALOGUE = DEFAULT_DATA.with_name("spotify_songs.csv")
METRICS = ("auc", "log_loss", "brier", "ece")
INNER_FOLDS = 3
LOGREG_MENU = [{"C": c} for c in (0.03, 0.3, 3.0)]
LGBM_MENU = [{"num_leaves": leaves, "min_child_samples": child} for leaves in (7, 15, 31) for child in (20, 100)]
QUICK_FIT = {"hidden": (16, 16), "n_members": 2, "max_epochs": 4, "patience": 2, "n_quantiles": 51}
QUICK_TRACKS, QUICK_SEEDS, QUICK_FOLDS = 1500, [0], 2  # --quick: a subsample, one seed, two folds
# network candidates: the shipped recipe, and experiments in the same protocol (`--only lightgbm network
# network_tabm …`): TabM-mini parts; a "_pretrained" one starts every part from one backbone pretrained
# on the training fold's catalogue tracks' popularity (standardised; MSE; early-stopped on 10 % of their songs)
TABM = {"arch": "tabm", "d_embed": 8, "hidden": (64, 64), "n_members": 8}
NETWORKS = {"network": {}, "network_tabm": TABM, "network_pretrained": {}, "network_tabm_pretrained": TABM}
PRETRAIN_STOP, PRETRAIN_LR = 0.1, 2e-3


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _spline_features(X_train: np.ndarray):
    """Logistic regression's inputs: the network's own quantile-normal transform (fitted on the
    training fold), cubic B-splines of the 10 normal scores, key's sin/cos and mode."""
    from sklearn.preprocessing import SplineTransformer

    transform = InputTransform(Preprocessing.fit(X_train, np.zeros(len(X_train))))

    def z(X):
        with torch.inference_mode():
            return transform(torch.as_tensor(X, dtype=torch.float32)).numpy().astype(float)

    splines = SplineTransformer(n_knots=6, degree=3, extrapolation="linear").fit(z(X_train)[:, :10])
    return lambda X: np.c_[splines.transform(z(X)[:, :10]), z(X)[:, 10:]]


def _logreg(setting: dict, X, y, X_stop, y_stop, seed: int, quick: bool):
    from sklearn.linear_model import LogisticRegression

    features = _spline_features(X)
    model = LogisticRegression(C=setting["C"], class_weight="balanced", max_iter=2000).fit(features(X), y)
    return lambda Z: model.decision_function(features(Z))


def _lightgbm(setting: dict, X, y, X_stop, y_stop, seed: int, quick: bool):
    import lightgbm as lgb

    model = lgb.LGBMClassifier(n_estimators=40 if quick else 3000, learning_rate=0.03, subsample=0.8, subsample_freq=1,
                               colsample_bytree=0.8, class_weight="balanced", n_jobs=1, verbose=-1, random_state=seed,
                               **setting)
    model.fit(X, y, eval_X=(X_stop,), eval_y=(y_stop,), eval_sample_weight=[balanced_weights(y_stop)],
              callbacks=[lgb.early_stopping(100, verbose=False)])
    return lambda Z: model.predict(Z, raw_score=True)


CLASSICAL = {"logistic_regression": (_logreg, LOGREG_MENU), "lightgbm": (_lightgbm, LGBM_MENU)}


def cross_fit_classical(name: str, X, y, groups, X_test, seed: int, quick: bool) -> tuple[np.ndarray, dict]:
    """The shared protocol (module doc) for a classical candidate → (test probabilities, what was chosen)."""
    fitter, menu = CLASSICAL[name]
    menu = menu[:2] if quick else menu
    folds = stratified_group_folds(y, groups, INNER_FOLDS, seed)
    best = None
    for setting in menu:
        oof, test_logits = np.zeros(len(y)), []
        for k, held in enumerate(folds):
            rest = np.setdiff1d(np.arange(len(y)), held)
            predict = fitter(setting, X[rest], y[rest], X[held], y[held], seed * 10 + k, quick)
            oof[held] = predict(X[held])
            test_logits.append(predict(X_test))
        a, b = fit_platt(oof, y)
        loss = fit_metrics(y, _sigmoid(a * oof + b))["log_loss"]
        if best is None or loss < best[0]:
            best = (loss, setting, np.mean([_sigmoid(a * t + b) for t in test_logits], axis=0))
    return best[2], {"setting": best[1], "inner_log_loss": best[0]}


def pretrain_popularity(part, X: np.ndarray, popularity: np.ndarray, groups: np.ndarray, config: FitConfig) -> dict:
    """Train ``part``'s backbone in place (``fit_backbone``) on (n,) standardised popularity of
    (n, 12) catalogue tracks: every member on MSE, early stopping on a grouped ``PRETRAIN_STOP``
    of the songs. Returns its history."""
    from virality.data.tracks import group_split

    fit_rows, stop_rows = group_split(groups, (1 - PRETRAIN_STOP, PRETRAIN_STOP), config.seed)
    target = torch.as_tensor((popularity - popularity[fit_rows].mean()) / popularity[fit_rows].std(), dtype=torch.float32)
    z = part.transform(torch.as_tensor(X, dtype=torch.float32))
    z_fit, target_fit, z_stop, target_stop = z[fit_rows], target[fit_rows], z[stop_rows], target[stop_rows]

    def batch_loss(out, batch):  # out (members, batch)
        return torch.nn.functional.mse_loss(out, target_fit[batch].expand_as(out))

    history = fit_backbone(part, z_fit, batch_loss, lambda backbone: float(
        torch.nn.functional.mse_loss(backbone(z_stop), target_stop)), config, config.seed, PRETRAIN_LR)
    return {"best_epoch": history["best_epoch"], "best_mse": history["best_loss"], "epochs_run": history["epochs_run"]}


def pretrained_init(X, y, groups, popularity, config: FitConfig):
    """``train_fit``'s ``init``: pretrain one backbone on the catalogue side's popularity (once),
    then start every part from its weights."""
    state, history = {}, {}

    def init(part):
        if not state:
            catalogue = y == 0
            history.update(pretrain_popularity(part, X[catalogue], popularity[catalogue], groups[catalogue], config))
            state.update(copy.deepcopy(part.backbone.state_dict()))
        part.backbone.load_state_dict(state)

    return init, history


def network(X, y, groups, X_test, seed: int, quick: bool, recipe: dict | None = None, popularity=None,
            pretrained: bool = False) -> tuple[np.ndarray, dict]:
    """A network recipe (default: the shipped one) on the training fold → (test probabilities, its parts' histories)."""
    config = FitConfig(seed=seed, **(recipe or {}) | (QUICK_FIT if quick else {}))
    init, pretraining = pretrained_init(X, y, groups, popularity, config) if pretrained else (None, None)
    fit, _, histories = train_fit(X, y, groups, config, init=init)
    return predict_percent(fit, X_test) / 100, {"parts": histories} | ({"pretraining": pretraining} if pretrained else {})


def fit_candidate(name: str, X, y, groups, X_test, seed: int, quick: bool, popularity=None) -> tuple[np.ndarray, dict]:
    """Any candidate (``CLASSICAL`` or ``NETWORKS``) on a training fold → (test probabilities,
    what it chose or how it trained); ``popularity`` (n,) only for the ``_pretrained`` networks."""
    if name in NETWORKS:
        return network(X, y, groups, X_test, seed, quick, NETWORKS[name], popularity, name.endswith("_pretrained"))
    return cross_fit_classical(name, X, y, groups, X_test, seed, quick)


def quick_rows(n: int) -> np.ndarray:
    """The rows ``--quick`` keeps of ``n``: a seeded ``QUICK_TRACKS`` of them."""
    return np.random.default_rng(0).choice(n, min(QUICK_TRACKS, n), replace=False)


def outer_tasks(y, groups, seeds, n_folds: int) -> list[tuple]:
    """(seed, fold, training rows, test rows) for every seed and outer fold grouped by song."""
    return [(seed, k, np.setdiff1d(np.arange(len(y)), test), test) for seed in seeds
            for k, test in enumerate(stratified_group_folds(y, groups, n_folds, seed))]


def run_fold(X, y, groups, era, candidates: list[str], quick: bool, popularity, seed: int, k: int, train, test) -> dict:
    """One (seed, outer fold): per candidate its metrics (overall and era check), choices and
    test probabilities (kept in memory for the pooled reliability curve)."""
    torch.set_num_threads(1)
    if set(groups[train]) & set(groups[test]):
        raise AssertionError("a song sits on both sides of an outer fold")
    out = {}
    for name in candidates:
        started = time.perf_counter()
        p, chosen = fit_candidate(name, X[train], y[train], groups[train], X[test], seed, quick, popularity[train])
        era_test = era[test]
        record = {"seed": seed, "fold": k, "seconds": time.perf_counter() - started, "chosen": chosen,
                  **fit_metrics(y[test], p), **{f"era_{m}": v for m, v in fit_metrics(y[test][era_test], p[era_test]).items()}}
        out[name] = (record, p)
        print(f"seed {seed} fold {k} {name:>19}: AUC {record['auc']:.4f} era {record['era_auc']:.4f} "
              f"({record['seconds']:.0f} s)", flush=True)
    return out


def summarise(records: dict) -> dict:
    return {name: {m: {"mean": float(np.mean([r[m] for r in rs])), "std": float(np.std([r[m] for r in rs]))}
                   for m in (*METRICS, *(f"era_{m}" for m in METRICS))}
            | {"seconds_per_fold": float(np.median([r["seconds"] for r in rs])), "chosen": [r["chosen"] for r in rs]}
            for name, rs in records.items()}


def paired(records: dict, a: str = "network", b: str = "lightgbm") -> dict:
    """AUC(a) − AUC(b) per (seed, fold), overall and in the era check: mean, std, a standard error
    that treats folds as independent (a lower bound), and how many folds ``a`` is better in."""
    out = {}
    for key in ("auc", "era_auc"):
        diff = np.array([x[key] - y[key] for x, y in zip(records[a], records[b])])
        out[key] = {"mean": float(diff.mean()), "std": float(diff.std()),
                    "se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0,
                    "better": int((diff > 0).sum()), "n": len(diff)}
    return out


def markdown(summary: dict, comparison: dict, reliability: list[dict], meta: dict) -> str:
    lines = [f"# TikTok fit on unseen tracks ({meta['folds']}-fold CV grouped by song × {len(meta['seeds'])} seeds, "
             f"{meta['tiktok_tracks']:,} TikTok and {meta['catalogue_tracks']:,} catalogue tracks"
             f"{', QUICK sample' if meta['quick'] else ''})", "",
             "Equal priors (each side weighs half). Era check: test TikTok tracks against test catalogue tracks "
             f"released {ERA_YEAR} or later. Mean ± std over folds.", "",
             "| candidate | AUC | log loss | Brier | ECE | era AUC | era log loss | era Brier | era ECE | s / fold |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, e in sorted(summary.items(), key=lambda item: -item[1]["auc"]["mean"]):
        cells = " | ".join(f"{e[m]['mean']:.4f} ± {e[m]['std']:.4f}" for m in (*METRICS, *(f"era_{m}" for m in METRICS)))
        lines.append(f"| {name} | {cells} | {e['seconds_per_fold']:.0f} |")
    pairs = [(("network", "lightgbm"), comparison)] if "auc" in comparison else []
    pairs += [(tuple(key.split("_vs_")), pair) for key, pair in comparison.items() if "_vs_" in key]
    for (a, b), pair in pairs:
        lines += ["", f"{a} − {b} AUC, paired by fold:", "", f"| | mean | std | s.e. | {a} better in |",
                  "|---|---|---|---|---|"]
        for key, label in (("auc", "overall"), ("era_auc", "era check")):
            d = pair[key]
            lines.append(f"| {label} | {d['mean']:+.4f} | {d['std']:.4f} | {d['se']:.4f} | {d['better']}/{d['n']} |")
    lines += ["", "Reliability of the network, pooled over test folds and seeds (equal priors):", "",
              "| predicted bin | mean predicted | share TikTok | weight | tracks |", "|---|---|---|---|---|"]
    lines += [f"| {b['low']:.2f}–{b['high']:.2f} | {b['predicted']:.3f} | {b['observed']:.3f} | {b['weight']:.3f} | "
              f"{b['n']} |" for b in reliability]
    lines += ["", f"Command: `{meta['command']}` ({meta['total_seconds']:.0f} s, {meta['jobs']} processes; load average "
              f"{meta['load_average'][0]:.1f} at the start, {meta['load_average'][1]:.1f} at the end)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--catalogue", default=str(DEFAULT_CATALOGUE), help="catalogue CSV (spotify_songs.csv)")
    p.add_argument("--quick", action="store_true", help="1,500 tracks, 2 folds, 1 seed, tiny menus: seconds")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only", nargs="*", help="run only these candidates")
    p.add_argument("--jobs", type=int, default=2, help="folds run in parallel processes (default 2: the 2 cores)")
    p.add_argument("--out", default=str(RESULTS), help="folder for <name>.{md,json}")
    p.add_argument("--name", default="fit", help="result file name (default fit: the one the Model page shows)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data = load_fit_data(args.data, args.catalogue)
    X, y, groups, era = data.X, data.y, data.groups, data.era_mask()
    popularity = data.table["popularity"].to_numpy(np.float64)
    seeds, n_folds = (QUICK_SEEDS, QUICK_FOLDS) if args.quick else (list(range(args.seeds)), args.folds)
    if args.quick:
        keep = quick_rows(len(y))
        X, y, groups, era, popularity = X[keep], y[keep], groups[keep], era[keep], popularity[keep]
    candidates = args.only or [*CLASSICAL, "network"]
    tasks = outer_tasks(y, groups, seeds, n_folds)
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    outputs = run_all(tasks, 1 if args.quick else args.jobs, run_fold, X, y, groups, era, candidates, args.quick,
                      popularity)
    records = {name: [out[name][0] for out in outputs] for name in candidates}
    reliability = []
    if "network" in candidates:
        pooled_y = np.concatenate([y[t[3]] for t in tasks])
        reliability = calibration_bins(pooled_y, np.concatenate([out["network"][1] for out in outputs]))
    summary = summarise(records)
    comparison = paired(records) if {"network", "lightgbm"} <= set(candidates) else {}
    extra_pairs = [(n, "lightgbm") for n in NETWORKS if n != "network"]
    extra_pairs += [(n, n.removesuffix("_pretrained")) for n in NETWORKS if n.endswith("_pretrained")]
    comparison |= {f"{a}_vs_{b}": paired(records, a, b) for a, b in extra_pairs if {a, b} <= set(candidates)}
    meta = {"folds": n_folds, "seeds": seeds, "quick": args.quick, "jobs": 1 if args.quick else args.jobs,
            "tiktok_tracks": int(y.sum()), "catalogue_tracks": int((y == 0).sum()), "songs": int(len(np.unique(groups))),
            "era_catalogue_tracks": int(((y == 0) & era).sum()), "sources": data.sources,
            "network_recipe": dataclasses.asdict(FitConfig()), "menus": {k: m for k, (_, m) in CLASSICAL.items()},
            "command": "python -m benchmarks.fit --data PATH --catalogue PATH" + (" --quick" if args.quick else "")
            + (f" --seeds {args.seeds}" if args.seeds != 3 else "") + (f" --folds {args.folds}" if args.folds != 5 else "")
            + (f" --only {' '.join(args.only)}" if args.only else "") + (f" --name {args.name}" if args.name != "fit" else ""),
            "total_seconds": round(time.perf_counter() - started, 1),
            "load_average": [load_start, os.getloadavg()[0]]}
    write_result(args.name, {"meta": meta, "candidates": summary, "paired": comparison, "reliability": reliability,
                         "records": records}, markdown(summary, comparison, reliability, meta), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
