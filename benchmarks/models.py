"""Every candidate model on tracks it never saw: 5-fold CV grouped by song × 3 seeds.

    python -m benchmarks.models --data ../shared/data/tiktok_tracks.csv      # full (~15 min, 2 cores)
    python -m benchmarks.models --data PATH --quick --out /tmp/x             # seconds: the test's run

Candidates: the training-mean predictor, ridge, random forest, LightGBM and each neural
backbone in ``virality.models.ARCHITECTURES``. Every tuning choice is made inside the outer
training fold only (nested): ridge's alpha by leave-one-out on the fold, the forest's leaf
size by its out-of-bag error, LightGBM's leaves/child size and number of trees on an inner
grouped validation split, each network's configuration (``NEURAL_GRIDS``) on an inner grouped
validation split (the same split stops its training early). The shipped network (``blend``) is
trained exactly as ``python -m virality train`` trains it (``virality.model.training.fit_shipped``):
cross-fitted on the outer training fold (``calibration_folds`` inner models, each early-stopped
on its own hold-out), the interval fitted to those out-of-fold scores, then the final model
trained on the whole training fold for the folds' median epoch count. The other networks' 80 %
intervals are cross-fitted the same way. For comparison every interval stands beside the honest
alternative: a constant interval, the training fold's 10th–90th percentiles of popularity,
whatever the score. Groups are songs (``track_id`` or lower-cased name + artist). The outer test
fold is only ever scored.

Writes ``<out>/models.{md,json}``: R², RMSE, MAE, Spearman (mean ± std over folds × seeds),
the interval's held-out coverage overall and per decile of predicted score, its mean
width and interval score (Winkler, α = 0.2), for the model's interval and the constant one, paired RMSE
differences of each network against the forest and LightGBM, and a 10 × 10 histogram of
(predicted, actual) on held-out tracks per candidate (counts only: no rows of the data).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import RESULTS, machine, parser
from virality.config import SHIPPED_ARCH, TrainConfig
from virality.data.tracks import GROUP_COLUMN, TARGET, file_sha256, group_kfold, group_split, load_tracks
from virality.features import FEATURE_NAMES
from virality.model.interval import interval_bounds
from virality.model.metrics import coverage, coverage_by_decile, regression_metrics
from virality.model.networks import Preprocessing, ViralityModel
from virality.model.training import calibrate_interval, fit_model, fit_shipped, predict_numpy

METRICS = ("r2", "rmse", "mae", "spearman")
INNER_VAL = 0.15  # share of an outer training fold's tracks held out for inner tuning / early stopping
HIST_EDGES = np.linspace(0, 100, 11)

# The documented search per network: a couple of configurations each, chosen per outer fold
# by inner-validation RMSE. Everything not listed takes TrainConfig's defaults.
NEURAL_GRIDS: dict[str, list[dict]] = {
    "mlp_ensemble": [
        {"arch_kwargs": {"hidden": (32, 32), "n_members": 8, "dropout": 0.2}},
        {"arch_kwargs": {"hidden": (64, 64), "n_members": 8, "dropout": 0.3}},
    ],
    "additive": [
        {"arch_kwargs": {"n_members": 4, "dropout": 0.1}, "lr": 1e-3, "weight_decay": 0.05, "n_pairs": 4},
        {"arch_kwargs": {"hidden": (8, 8), "pair_hidden": (8, 8), "n_members": 4, "dropout": 0.1}, "lr": 3e-4,
         "weight_decay": 0.05, "n_pairs": 4},
    ],
    "tabm": [
        {"arch_kwargs": {"d_embed": 8, "hidden": (64, 64), "dropout": 0.3}, "lr": 3e-4},
        {"arch_kwargs": {"d_embed": 8, "hidden": (64, 64), "dropout": 0.2}, "lr": 3e-4},
    ],
    # the MLP ensemble and TabM trained together as one ensemble; one configuration: each
    # part's most frequent inner-validation choice in the runs above
    "blend": [
        {"arch_kwargs": {"parts": [
            {"arch": "mlp_ensemble", "arch_kwargs": {"hidden": (32, 32), "n_members": 8, "dropout": 0.2}},
            {"arch": "tabm", "arch_kwargs": {"d_embed": 8, "hidden": (64, 64), "n_members": 8, "dropout": 0.3}}]},
         "lr": 3e-4},
    ],
}
QUICK_OVERRIDES = {"max_epochs": 4, "patience": 2, "calibration_folds": 2}
# each network's interval: the shipped recipe's, then the constant 10th–90th percentile interval
INTERVALS = ("crossfit", "constant")


@dataclasses.dataclass
class Fold:
    """One outer fold: raw (n, 12) inputs and popularity of its training and test tracks."""

    X_train: np.ndarray
    y_train: np.ndarray
    ids_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    seed: int
    quick: bool

    def inner_split(self) -> tuple[np.ndarray, np.ndarray]:
        """Grouped (fit, validation) positions inside the training fold."""
        fit, val = group_split(self.ids_train, (1 - INNER_VAL, INNER_VAL), self.seed)
        return fit, val


def run_mean(fold: Fold) -> tuple[np.ndarray, dict]:
    return np.full(len(fold.y_test), fold.y_train.mean()), {}


def run_ridge(fold: Fold) -> tuple[np.ndarray, dict]:
    """Ridge on the networks' transformed inputs; alpha by leave-one-out on the training fold."""
    from sklearn.linear_model import RidgeCV

    model = ViralityModel(Preprocessing.fit(fold.X_train, fold.y_train), "mlp_ensemble", {})
    with torch.inference_mode():
        z_train, z_test = (model.transform(torch.as_tensor(x, dtype=torch.float32)).numpy()
                           for x in (fold.X_train, fold.X_test))
    ridge = RidgeCV(alphas=np.logspace(-2, 4, 25)).fit(z_train, fold.y_train)
    return ridge.predict(z_test), {"alpha": float(ridge.alpha_)}


def run_forest(fold: Fold) -> tuple[np.ndarray, dict]:
    """Random forest; leaf size from {5, 20, 50} by out-of-bag RMSE on the training fold."""
    from sklearn.ensemble import RandomForestRegressor

    best = None
    for leaf in (5, 20, 50):
        forest = RandomForestRegressor(n_estimators=30 if fold.quick else 200, min_samples_leaf=leaf,
                                       max_features=0.33, oob_score=True, n_jobs=1, random_state=fold.seed)
        forest.fit(fold.X_train, fold.y_train)
        oob_rmse = float(np.sqrt(np.mean((forest.oob_prediction_ - fold.y_train) ** 2)))
        if best is None or oob_rmse < best[0]:
            best = (oob_rmse, leaf, forest)
    return best[2].predict(fold.X_test), {"min_samples_leaf": best[1]}


def run_lightgbm(fold: Fold) -> tuple[np.ndarray, dict]:
    """LightGBM, learning rate 0.02, subsampled rows/columns, L2 5; leaves × min child size
    and the number of trees (early stopping) chosen on an inner grouped split; then refit
    on the whole training fold with the chosen settings."""
    import lightgbm as lgb

    fit, val = fold.inner_split()
    base = dict(learning_rate=0.02, subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=5.0,
                n_jobs=1, verbose=-1, random_state=fold.seed)
    best = None
    for leaves, child in ((4, 20), (4, 60), (15, 20), (15, 60)):
        booster = lgb.LGBMRegressor(n_estimators=20 if fold.quick else 1500, num_leaves=leaves,
                                    min_child_samples=child, **base)
        booster.fit(fold.X_train[fit], fold.y_train[fit], eval_X=(fold.X_train[val],), eval_y=(fold.y_train[val],),
                    callbacks=[lgb.early_stopping(100, verbose=False)])
        score = booster.best_score_["valid_0"]["l2"]
        if best is None or score < best[0]:
            best = (score, dict(num_leaves=leaves, min_child_samples=child,
                                n_estimators=max(1, booster.best_iteration_ or 20)))
    final = lgb.LGBMRegressor(**best[1], **base).fit(fold.X_train, fold.y_train)
    return final.predict(fold.X_test), best[1]


def run_network(arch: str, fold: Fold, calibration_folds: int | None = None) -> tuple[np.ndarray, dict, dict]:
    """The shipped network by the shipped recipe (``fit_shipped``); any other network: each grid
    configuration fitted on the inner split, the best on inner validation kept, its interval
    cross-fitted on the training fold. Returns raw test predictions, what was chosen and
    ``{interval name: fn(clipped test scores) -> (low, high)}``."""
    quick = QUICK_OVERRIDES if fold.quick else {}
    if arch == SHIPPED_ARCH:
        (overrides,) = NEURAL_GRIDS[arch]
        config = dataclasses.replace(TrainConfig(seed=fold.seed, arch=arch, threads=1), **overrides, **quick)
        if calibration_folds:
            config = dataclasses.replace(config, calibration_folds=calibration_folds)
        model, interval, crossfit = fit_shipped(fold.X_train, fold.y_train, fold.ids_train, config)
        chosen = {**overrides, "recipe": "fit_shipped", "fold_best_epochs": crossfit.best_epochs}
    else:
        fit, val = fold.inner_split()
        best = None
        for overrides in NEURAL_GRIDS[arch]:
            config = dataclasses.replace(TrainConfig(seed=fold.seed, arch=arch, threads=1), **overrides, **quick)
            model, history = fit_model(fold.X_train[fit], fold.y_train[fit], fold.X_train[val], fold.y_train[val],
                                       config, progress=False)
            if best is None or history["best_val_rmse"] < best[0]:
                best = (history["best_val_rmse"], config, overrides, model)
        _, config, overrides, model = best
        if calibration_folds:
            config = dataclasses.replace(config, calibration_folds=calibration_folds)
        interval = calibrate_interval(fold.X_train, fold.y_train, fold.ids_train, config)
        chosen = {**overrides, "arch_kwargs": {k: v for k, v in model.arch_kwargs.items()}}
    chosen["interval_form"] = interval["selection"]["form"]
    tail = (1 - config.interval_level) / 2
    constant = np.quantile(fold.y_train, [tail, 1 - tail])
    intervals = {"crossfit": lambda score: interval_bounds(interval, score),
                 "constant": lambda score: (np.full(len(score), constant[0]), np.full(len(score), constant[1]))}
    return predict_numpy(model, fold.X_test), chosen, {**intervals, "_selection": interval["selection"]}


def interval_score(y: np.ndarray, low: np.ndarray, high: np.ndarray, level: float = 0.8) -> float:
    """Mean Winkler interval score in points (lower is better): the width, plus 2/α times how
    far a track falls outside (α = 1 − level). Rewards a narrow interval only where it still holds."""
    alpha = 1 - level
    return float(np.mean(high - low + (2 / alpha) * (np.maximum(low - y, 0) + np.maximum(y - high, 0))))


BASELINES = {"mean": run_mean, "ridge": run_ridge, "random_forest": run_forest, "lightgbm": run_lightgbm}
if importlib.util.find_spec("lightgbm") is None:  # a benchmark-only dependency (requirements-bench.txt)
    del BASELINES["lightgbm"]


def evaluate(X: np.ndarray, y: np.ndarray, ids: np.ndarray, seeds: list[int], n_folds: int, quick: bool,
             candidates: list[str], jobs: int = 1, calibration_folds: int | None = None) -> dict:
    """Run every candidate on every (seed, fold), ``jobs`` folds at a time; returns
    per-candidate per-fold records and pooled held-out predictions per seed (kept in memory
    only, summarised before saving)."""
    tasks = [(seed, k, train, test) for seed in seeds for k, (train, test) in enumerate(group_kfold(ids, n_folds, seed))]
    if jobs > 1:
        from joblib import Parallel, delayed

        outputs = Parallel(n_jobs=jobs)(delayed(_run_fold)(X, y, ids, t, quick, candidates, calibration_folds)
                                            for t in tasks)
    else:
        outputs = [_run_fold(X, y, ids, t, quick, candidates, calibration_folds) for t in tasks]
    records = {name: [] for name in candidates}
    pooled = {name: {s: np.zeros(len(y)) for s in seeds} for name in candidates}
    bounds = {method: {name: {s: np.zeros((2, len(y))) for s in seeds} for name in candidates if name in NEURAL_GRIDS}
              for method in INTERVALS}
    for (seed, _, _, test), fold_out in zip(tasks, outputs):
        for name, (record, pred, low_high) in fold_out.items():
            records[name].append(record)
            pooled[name][seed][test] = pred
            for method, (low, high) in (low_high or {}).items():
                bounds[method][name][seed][:, test] = low, high
    return {"records": records, "pooled": pooled, "bounds": bounds}


def _run_fold(X, y, ids, task, quick: bool, candidates: list[str], calibration_folds: int | None = None) -> dict:
    """One outer fold, every candidate: name → (record, clipped test predictions,
    {interval method: (low, high)} or None)."""
    seed, k, train, test = task
    torch.set_num_threads(1)
    fold = Fold(X[train], y[train], ids[train], X[test], y[test], seed, quick)
    out = {}
    for name in candidates:
        started = time.perf_counter()
        if name in NEURAL_GRIDS:
            raw, chosen, intervals = run_network(name, fold, calibration_folds)
        else:
            raw, chosen = BASELINES[name](fold)
        pred = np.clip(raw, 0, 100)
        record = {"seed": seed, "fold": k, "seconds": time.perf_counter() - started, "chosen": chosen,
                  **regression_metrics(fold.y_test, pred)}
        low_high = None
        if name in NEURAL_GRIDS:
            low_high = {method: intervals[method](pred) for method in INTERVALS}
            for method, (low, high) in low_high.items():
                key = "" if method == "crossfit" else f"_{method}"
                record[f"coverage{key}"] = coverage(fold.y_test, low, high)
                record[f"mean_width{key}"] = float(np.mean(high - low))
                record[f"interval_score{key}"] = interval_score(fold.y_test, low, high)
            selection = intervals["_selection"]
            record["inner_cv_coverage"] = selection["cv_coverage"]
            record["inner_cv_coverage_by_decile"] = selection["cv_coverage_by_decile"]
        out[name] = (record, pred, low_high)
        print(f"seed {seed} fold {k} {name:>14}: rmse {record['rmse']:.3f}  ({record['seconds']:.1f} s)", flush=True)
    return out


def summarise(y: np.ndarray, run: dict) -> dict:
    """Mean ± std over folds × seeds, coverage per decile, paired comparisons, histograms."""
    out = {}
    for name, records in run["records"].items():
        entry = {m: {"mean": float(np.mean([r[m] for r in records])), "std": float(np.std([r[m] for r in records]))}
                 for m in METRICS}
        entry["seconds_per_fold"] = float(np.median([r["seconds"] for r in records]))
        entry["chosen"] = [r["chosen"] for r in records]
        seeds = sorted(run["pooled"][name])
        entry["heldout_histogram"] = {
            "edges": HIST_EDGES.tolist(),
            "counts": sum(np.histogram2d(run["pooled"][name][s], y, bins=[HIST_EDGES, HIST_EDGES])[0]
                          for s in seeds).astype(int).tolist(),  # [predicted bin][actual bin], all seeds
            "binned": binned_actual(np.concatenate([run["pooled"][name][s] for s in seeds]), np.tile(y, len(seeds))),
        }
        for method in INTERVALS:
            if name in run["bounds"][method]:
                key = "coverage" if method == "crossfit" else f"coverage_{method}"
                entry[key] = interval_summary(y, run["pooled"][name], run["bounds"][method][name], records,
                                              "" if method == "crossfit" else f"_{method}")
        out[name] = entry
    return out


def interval_summary(y: np.ndarray, pooled: dict, bounds: dict, records: list[dict], suffix: str) -> dict:
    """Held-out coverage of one calibration: over folds (mean, std), per decile of the
    pooled predicted score (mean and std over seeds), and the mean width in points."""
    seeds = sorted(pooled)
    per_seed = [coverage_by_decile(pooled[s], y, *bounds[s]) for s in seeds]
    return {"mean": float(np.mean([r[f"coverage{suffix}"] for r in records])),
            "std": float(np.std([r[f"coverage{suffix}"] for r in records])),
            "by_decile_mean": np.mean(per_seed, axis=0).tolist(),
            "by_decile_std": np.std(per_seed, axis=0).tolist(),
            "mean_width": float(np.mean([np.mean(bounds[s][1] - bounds[s][0]) for s in seeds])),
            "interval_score": float(np.mean([r[f"interval_score{suffix}"] for r in records])),
            "interval_score_std": float(np.std([r[f"interval_score{suffix}"] for r in records]))}


def binned_actual(pred: np.ndarray, y: np.ndarray, n_bins: int = 10) -> list[dict]:
    """Per decile of predicted score: mean predicted, mean / 10th / 90th percentile actual."""
    edges = np.quantile(pred, np.linspace(0, 1, n_bins + 1)[1:-1])
    decile = np.searchsorted(edges, pred, side="right")
    return [{"decile": d + 1, "n": int(np.sum(decile == d)), "predicted": float(pred[decile == d].mean()),
             "actual_mean": float(y[decile == d].mean()), "actual_p10": float(np.quantile(y[decile == d], 0.1)),
             "actual_p90": float(np.quantile(y[decile == d], 0.9))} for d in range(n_bins) if np.any(decile == d)]


def paired_differences(records: dict) -> dict:
    """RMSE(network) − RMSE(baseline) per (seed, fold): mean, std and a standard error that
    treats the folds × seeds as independent (they are not fully: it is a lower bound)."""
    out = {}
    for net in (n for n in records if n in NEURAL_GRIDS):
        for base in ("random_forest", "lightgbm"):
            if base not in records:
                continue
            diff = np.array([a["rmse"] - b["rmse"] for a, b in zip(records[net], records[base])])
            out[f"{net} - {base}"] = {"mean": float(diff.mean()), "std": float(diff.std()),
                                      "se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0,
                                      "wins": int(np.sum(diff < 0)), "n": len(diff)}
    return out


def best_network(summary: dict) -> str:
    nets = [n for n in summary if n in NEURAL_GRIDS]
    return min(nets, key=lambda n: summary[n]["rmse"]["mean"])


def markdown(summary: dict, paired: dict, meta: dict) -> str:
    lines = [f"# Models on unseen tracks ({meta['folds']}-fold CV grouped by song × {len(meta['seeds'])} seeds,"
             f" {meta['tracks']:,} tracks{', QUICK sample' if meta['quick'] else ''})", "",
             "| model | R² | RMSE | MAE | Spearman | 80 % interval coverage | s / fold |",
             "|---|---|---|---|---|---|---|"]
    for name, e in sorted(summary.items(), key=lambda item: item[1]["rmse"]["mean"]):
        cov = f"{e['coverage']['mean']:.1%} ± {e['coverage']['std']:.1%}" if "coverage" in e else "—"
        cells = " | ".join(f"{e[m]['mean']:.3f} ± {e[m]['std']:.3f}" for m in METRICS)
        lines.append(f"| {name} | {cells} | {cov} | {e['seconds_per_fold']:.1f} |")
    lines += ["", "Mean ± std over folds × seeds. RMSE and MAE in popularity points (0–100).", "",
              "Paired RMSE difference per (seed, fold), network − baseline (negative: the network is better):", "",
              "| comparison | mean | std | s.e. | network better in |", "|---|---|---|---|---|"]
    for key, d in paired.items():
        lines.append(f"| {key} | {d['mean']:+.3f} | {d['std']:.3f} | {d['se']:.3f} | {d['wins']}/{d['n']} |")
    best = meta["best_network"]
    lines += coverage_lines(summary, best, meta)
    lines += ["", f"Best network by mean RMSE: **{best}**. Command: `{meta['command']}`."]
    return "\n".join(lines)


def coverage_lines(summary: dict, best: str | None, meta: dict) -> list[str]:
    """Markdown: each network's held-out 80 % coverage per decile of predicted score, overall
    and mean width, cross-fitted (shipped recipe) and, for comparison, the old recipe."""
    nets = sorted((n for n in summary if "coverage" in summary[n]), key=lambda n: (n != best, n))
    if not nets:
        return []
    lines = ["", "Held-out coverage of the 80 % interval per decile of predicted score (lowest first; mean over "
             f"seeds ± std over seeds for the shipped network), overall (mean ± std over folds) and mean width in "
             f"points. *cross-fitted*: calibrated on out-of-fold scores of the whole training fold "
             f"({meta['calibration_folds']} inner folds), the ends' shape chosen by inner cross-validated per-decile "
             "coverage (the shipped recipe); *constant*: the training fold's 10th–90th percentiles of popularity "
             "for every track, whatever its score (the honest alternative). Interval score: mean Winkler score "
             "(α = 0.2) in points, lower is better (mean ± std over folds).", "",
             "| network, interval | " + " | ".join(str(d + 1) for d in range(10)) + " | overall | width | interval score |",
             "|---" * 14 + "|"]
    for name in nets:
        for key, label in (("coverage", "cross-fitted"), ("coverage_constant", "constant")):
            if key not in summary[name]:
                continue
            cov = summary[name][key]
            cells = [f"{c:.1%}" + (f" ± {sd:.1%}" if name == best and key == "coverage" else "")
                     for c, sd in zip(cov["by_decile_mean"], cov["by_decile_std"])]
            lines.append(f"| {name}, {label} | " + " | ".join(cells)
                         + f" | {cov['mean']:.1%} ± {cov['std']:.1%} | {cov['mean_width']:.1f} "
                         f"| {cov['interval_score']:.2f} ± {cov['interval_score_std']:.2f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="300 tracks, 2 folds, 1 seed, a few epochs: seconds")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--out", default=str(RESULTS), help="folder for models.{md,json}")
    p.add_argument("--only", nargs="*", help="run only these candidates")
    p.add_argument("--jobs", type=int, default=2, help="folds run in parallel processes (default 2: the 2 cores)")
    p.add_argument("--calibration-folds", type=int, default=None,
                   help="inner folds of the cross-fitted interval calibration (default: TrainConfig's)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    tracks = load_tracks(args.data).tracks
    seeds, n_folds = (([0], 2) if args.quick else (list(range(args.seeds)), args.folds))
    if args.quick:
        tracks = tracks.sample(min(300, len(tracks)), random_state=0).reset_index(drop=True)
    X = tracks[list(FEATURE_NAMES)].to_numpy(np.float64)
    y = tracks[TARGET].to_numpy(np.float64)
    ids = tracks[GROUP_COLUMN].to_numpy()
    candidates = args.only or [*BASELINES, *NEURAL_GRIDS]
    started = time.perf_counter()
    run = evaluate(X, y, ids, seeds, n_folds, args.quick, candidates, 1 if args.quick else args.jobs,
                   args.calibration_folds)
    summary = summarise(y, run)
    paired = paired_differences(run["records"])
    meta = {"folds": n_folds, "seeds": seeds, "tracks": len(tracks), "quick": args.quick,
            "data_sha256": file_sha256(args.data), "jobs": 1 if args.quick else args.jobs, "grids": NEURAL_GRIDS, "inner_val": INNER_VAL,
            "calibration_folds": args.calibration_folds or (QUICK_OVERRIDES["calibration_folds"] if args.quick
                                                            else TrainConfig.calibration_folds),
            "interval_forms": list(TrainConfig.interval_forms),
            "command": "python -m benchmarks.models --data PATH" + (" --quick" if args.quick else ""),
            "best_network": best_network(summary) if any(n in NEURAL_GRIDS for n in summary) else None,
            "total_seconds": round(time.perf_counter() - started, 1)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = markdown(summary, paired, meta)
    payload = {"machine": machine(), "meta": meta, "candidates": summary, "paired": paired,
               "records": run["records"]}
    (out / "models.json").write_text(json.dumps(payload, indent=1, default=_jsonable) + "\n")
    (out / "models.md").write_text(text + "\n")
    print(text)
    return 0


def _jsonable(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value)}")


if __name__ == "__main__":
    raise SystemExit(main())
