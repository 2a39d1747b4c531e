"""TikTok fit's learning curve: AUC on unseen tracks as the training fold grows, for LightGBM and the network.

    python -m benchmarks.fit_curve --data ../shared/data/tiktok_tracks.csv --catalogue ../shared/data/spotify_songs.csv
    python -m benchmarks.fit_curve --quick --out /tmp/x      # seconds: the test's run on a subsample

The question it answers: would more tracks of the same kind bring AUC to the issue's goal (0.80
overall, 0.75 on the era check), or has the model reached what the 12 characteristics carry?
Outer folds and candidates as ``benchmarks.fit`` (5 folds grouped by song × seeds; LightGBM
through its cross-fitted protocol, tuned inside the training fold; the shipped network's recipe).
Each outer training fold is cut to ``FRACTIONS`` of its songs (each side's songs in a seeded
order, nested: the quarter is inside the half), the candidates train on that and score the
whole outer test fold. Reports AUC and era AUC per fraction (mean ± std over folds × seeds) and
the gain per doubling of the training tracks, fitted by least squares on log2(tracks) over the
last three fractions, with the doublings that gain would need to reach the goals. Learning
curves flatten as they go, so that extrapolation is optimistic. Writes
``<out>/fit_curve.{md,json}`` (no rows of the data).
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from benchmarks.common import RESULTS, parser, run_all, write_result
from benchmarks.fit import (
    CLASSICAL,
    DEFAULT_CATALOGUE,
    QUICK_FOLDS,
    QUICK_SEEDS,
    fit_candidate,
    outer_tasks,
    quick_rows,
)
from virality.data.catalogue import ERA_YEAR, load_fit_data
from virality.model.fit import fit_metrics

FRACTIONS = (0.125, 0.25, 0.5, 1.0)
CANDIDATES = ("lightgbm", "network")
GOALS = {"auc": 0.80, "era_auc": 0.75}
VARY_TEXT = {"both": "its songs", "tiktok": "its TikTok songs (every catalogue track kept)",
             "catalogue": "its catalogue songs (every TikTok track kept)"}


SIDES = {"both": (1, 0), "tiktok": (1,), "catalogue": (0,)}


def nested_subsets(y: np.ndarray, groups: np.ndarray, fractions, seed: int, vary: str = "both") -> dict[float, np.ndarray]:
    """Row positions of the first ``fraction`` of the songs of the side(s) ``vary`` names
    (``SIDES``; the other side kept whole) in one seeded order, so every smaller subset sits
    inside every larger one."""
    rng = np.random.default_rng(seed)
    order = {side: rng.permutation(np.unique(groups[y == side])) for side in (1, 0)}
    out = {}
    for fraction in fractions:
        chosen = np.concatenate([songs[: max(1, round(fraction * len(songs)))] if side in SIDES[vary] else songs
                                 for side, songs in order.items()])
        out[fraction] = np.flatnonzero(np.isin(groups, chosen))
    return out


def run_fold(X, y, groups, era, quick: bool, vary: str, candidates, seed: int, k: int, train, test) -> list[dict]:
    """One (seed, outer fold): for every fraction and candidate, its training tracks and test AUCs."""
    torch.set_num_threads(1)
    records = []
    for fraction, rows in nested_subsets(y[train], groups[train], FRACTIONS, seed * 100 + k, vary).items():
        part = train[rows]
        for name in candidates:
            started = time.perf_counter()
            p, _ = fit_candidate(name, X[part], y[part], groups[part], X[test], seed, quick)
            overall, era_check = fit_metrics(y[test], p), fit_metrics(y[test][era[test]], p[era[test]])
            records.append({"seed": seed, "fold": k, "fraction": fraction, "candidate": name, "tracks": len(part),
                            "tiktok_tracks": int(y[part].sum()),
                            "auc": overall["auc"], "era_auc": era_check["auc"],
                            "seconds": time.perf_counter() - started})
            print(f"seed {seed} fold {k} {fraction:>5} {name:>8}: AUC {overall['auc']:.4f} "
                  f"era {era_check['auc']:.4f}", flush=True)
    return records


def varied_tracks(record: dict, vary: str) -> int:
    """The training tracks of the side(s) that were cut."""
    return {"both": record["tracks"], "tiktok": record["tiktok_tracks"],
            "catalogue": record["tracks"] - record["tiktok_tracks"]}[vary]


def per_doubling(records: list[dict], name: str, key: str, vary: str = "both") -> dict:
    """Least-squares gain in ``key`` per doubling of the cut side's training tracks over the last
    three fractions (fold means), and the doublings from the full fold to the goal at that gain."""
    fractions = FRACTIONS[-3:]
    tracks = [np.mean([varied_tracks(r, vary) for r in records if r["candidate"] == name and r["fraction"] == f])
              for f in fractions]
    means = [np.mean([r[key] for r in records if r["candidate"] == name and r["fraction"] == f]) for f in fractions]
    slope = float(np.polyfit(np.log2(tracks), means, 1)[0])
    gap = GOALS[key] - means[-1]
    return {"gain_per_doubling": slope, "at_full": float(means[-1]), "goal": GOALS[key],
            "doublings_to_goal": float(gap / slope) if slope > 0 else float("inf")}


def last_doubling(records: list[dict], name: str, key: str) -> dict:
    """``key`` on the full training fold minus on its half, paired by (seed, fold): mean, a
    standard error that treats folds as independent, and the folds the full fold is better in."""
    by_fold = {f: {(r["seed"], r["fold"]): r[key] for r in records if r["candidate"] == name and r["fraction"] == f}
               for f in (0.5, 1.0)}
    diff = np.array([by_fold[1.0][k] - by_fold[0.5][k] for k in by_fold[1.0]])
    return {"mean": float(diff.mean()), "se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0,
            "better": int((diff > 0).sum()), "n": len(diff)}


def summarise(records: list[dict], candidates=CANDIDATES) -> dict:
    table = {}
    for name in candidates:
        for fraction in FRACTIONS:
            rs = [r for r in records if r["candidate"] == name and r["fraction"] == fraction]
            table[f"{name}@{fraction}"] = {"candidate": name, "fraction": fraction,
                                           "tracks": float(np.mean([r["tracks"] for r in rs])),
                                           "tiktok_tracks": float(np.mean([r["tiktok_tracks"] for r in rs])),
                                           **{key: {"mean": float(np.mean([r[key] for r in rs])),
                                                    "std": float(np.std([r[key] for r in rs]))}
                                              for key in GOALS}}
    return table


def markdown(table: dict, trend: dict, doubling: dict, meta: dict) -> str:
    lines = [f"# TikTok fit's learning curve ({meta['folds']}-fold CV grouped by song × {len(meta['seeds'])} seeds"
             f"{', QUICK sample' if meta['quick'] else ''})", "",
             f"Each outer training fold cut to a share of {VARY_TEXT[meta['vary']]} (nested); every model scores the whole outer "
             f"test fold. Era check: against catalogue tracks released {ERA_YEAR} or later. Mean ± std over folds.", "",
             "| candidate | share | training tracks | of them TikTok | AUC | era AUC |", "|---|---|---|---|---|---|"]
    for row in table.values():
        lines.append(f"| {row['candidate']} | {row['fraction']:g} | {row['tracks']:,.0f} | {row['tiktok_tracks']:,.0f} | "
                     f"{row['auc']['mean']:.4f} ± {row['auc']['std']:.4f} | "
                     f"{row['era_auc']['mean']:.4f} ± {row['era_auc']['std']:.4f} |")
    lines += ["", f"Gain per doubling of the {'' if meta['vary'] == 'both' else meta['vary'] + ' '}training tracks (least squares on log2 tracks, last three shares), "
              "and the doublings that gain would need from the full fold to the goal:", "",
              "| candidate | metric | at full fold | gain per doubling | goal | doublings to goal |", "|---|---|---|---|---|---|"]
    for key, t in trend.items():
        name, metric = key.split(":")
        lines.append(f"| {name} | {metric} | {t['at_full']:.4f} | {t['gain_per_doubling']:+.4f} | {t['goal']:.2f} | "
                     f"{t['doublings_to_goal']:.1f} |")
    lines += ["", "The last doubling, paired by fold: the full training fold minus its half:", "",
              "| candidate | metric | mean | s.e. | full fold better in |", "|---|---|---|---|---|"]
    for key, d in doubling.items():
        name, metric = key.split(":")
        lines.append(f"| {name} | {metric} | {d['mean']:+.4f} | {d['se']:.4f} | {d['better']}/{d['n']} |")
    lines += ["", f"Command: `{meta['command']}` ({meta['total_seconds']:.0f} s, {meta['jobs']} processes)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--catalogue", default=str(DEFAULT_CATALOGUE), help="catalogue CSV (spotify_songs.csv)")
    p.add_argument("--quick", action="store_true", help="1,500 tracks, 2 folds, 1 seed, tiny menus: seconds")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--vary", choices=sorted(SIDES), default="both",
                   help="which side's songs are cut to the shares (default both; the other side stays whole)")
    p.add_argument("--only", nargs="*", choices=[*CLASSICAL, "network"], default=list(CANDIDATES),
                   help="candidates (default lightgbm network)")
    p.add_argument("--jobs", type=int, default=2, help="folds run in parallel processes (default 2: the 2 cores)")
    p.add_argument("--out", default=str(RESULTS), help="folder for fit_curve.{md,json}")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data = load_fit_data(args.data, args.catalogue)
    X, y, groups, era = data.X, data.y, data.groups, data.era_mask()
    seeds, n_folds = (QUICK_SEEDS, QUICK_FOLDS) if args.quick else (list(range(args.seeds)), 5)
    if args.quick:
        keep = quick_rows(len(y))
        X, y, groups, era = X[keep], y[keep], groups[keep], era[keep]
    started = time.perf_counter()
    outputs = run_all(outer_tasks(y, groups, seeds, n_folds), 1 if args.quick else args.jobs, run_fold,
                      X, y, groups, era, args.quick, args.vary, args.only)
    records = [r for out in outputs for r in out]
    table = summarise(records, args.only)
    trend = {f"{c}:{key}": per_doubling(records, c, key, args.vary) for c in args.only for key in GOALS}
    doubling = {f"{c}:{key}": last_doubling(records, c, key) for c in args.only for key in GOALS}
    name = "fit_curve" if args.vary == "both" else f"fit_curve_{args.vary}"
    meta = {"vary": args.vary, "folds": n_folds, "seeds": seeds, "quick": args.quick, "jobs": 1 if args.quick else args.jobs,
            "fractions": FRACTIONS, "sources": data.sources, "total_seconds": round(time.perf_counter() - started, 1),
            "command": "python -m benchmarks.fit_curve --data PATH --catalogue PATH" + (" --quick" if args.quick else "")
            + (f" --seeds {args.seeds}" if args.seeds != 1 else "") + (f" --vary {args.vary}" if args.vary != "both" else "")
            + (f" --only {' '.join(args.only)}" if list(args.only) != list(CANDIDATES) else ""),
            "load_average_end": os.getloadavg()[0]}
    write_result(name, {"meta": meta, "table": table, "trend": trend, "last_doubling": doubling, "records": records},
                 markdown(table, trend, doubling, meta), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
