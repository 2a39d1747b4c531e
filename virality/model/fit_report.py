"""The TikTok-fit model in plain words and tables, for the Model page.

Reads the bundle's own out-of-fold figures (``BundleMetadata.fit``, a ``FitInfo``) and, when it
is there, the benchmark ``benchmarks/results/fit.json`` (written by ``python -m benchmarks.fit``:
metrics, counts and pooled reliability bins only, no rows of the data). Figures are drawn by
``virality.model.plots.reliability_figure``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from virality.config import RESULTS_DIR
from virality.model.report import NoResults, is_level
from virality.plotting import signed

if TYPE_CHECKING:
    from virality.model.metadata import FitInfo

FIT_RESULTS_FILE = RESULTS_DIR / "fit.json"
CURVE_FILES = {side: RESULTS_DIR / f"fit_curve_{side}.json" for side in ("tiktok", "catalogue")}
FIT_COMMAND = "python -m benchmarks.fit --data PATH --catalogue PATH"
FIT_METRICS = {"auc": "AUC", "log_loss": "log loss", "brier": "Brier", "ece": "ECE"}
CANDIDATE_NAMES = {"logistic_regression": "logistic regression", "lightgbm": "LightGBM", "network": "network"}
ERA_CONFOUND = ("The catalogue reaches back decades and TikTok's tracks are recent, so part of what the model "
                "learned is simply “sounds modern”; and the catalogue is six genre playlists from 2020, so part "
                "is genre.")


def load_fit_results(path: str | Path | None = None) -> dict:
    """The fit benchmark's JSON (default ``FIT_RESULTS_FILE``); ``NoResults`` saying how to make it."""
    path = Path(path or FIT_RESULTS_FILE)
    if not path.is_file():
        raise NoResults(f"no TikTok-fit benchmark results at {path}: run `{FIT_COMMAND}` "
                        "(about an hour on 2 cores; `--quick` gives a file of the same shape in seconds)")
    return json.loads(path.read_text(encoding="utf-8"))


def fit_headline(fit: FitInfo) -> list[str]:
    """Plain sentences on the bundled fit model's out-of-fold figures: how well it separates the
    two sides (AUC), how honest its percentages are (ECE, Brier), and the era check."""
    overall, era = fit.overall, fit.era
    data = fit.data
    return [
        f"On tracks it never saw, given one TikTok-trending track and one catalogue track, the TikTok-fit model "
        f"gives the TikTok one the higher fit {overall.auc:.0%} of the time (AUC {overall.auc:.2f}; 0.5 is a coin "
        f"toss), and its percentages are honest to within {100 * overall.ece:.1f} points on average (expected "
        f"calibration error; Brier score {overall.brier:.3f}).",
        f"Against catalogue tracks released {data.get('era_year', 2017)} or later only (the era check), AUC "
        f"{era.auc:.2f}, calibration error {100 * era.ece:.1f} points. {ERA_CONFOUND}",
    ]


def fit_facts(fit: FitInfo) -> pd.DataFrame:
    """The bundle's out-of-fold figures: rows ``all catalogue tracks`` and ``era check``,
    columns ``AUC``, ``log loss``, ``Brier``, ``ECE`` (0–1 scales)."""
    rows = {"all catalogue tracks": fit.overall, "era check": fit.era}
    return pd.DataFrame({label: [getattr(m, key) for m in rows.values()] for key, label in FIT_METRICS.items()},
                        index=list(rows))


def reliability_frame(fit: FitInfo) -> pd.DataFrame:
    """The reliability curve in percent: per bin of predicted fit ``low``, ``high``,
    ``predicted`` (mean predicted), ``observed`` (share that were TikTok tracks, equal priors),
    ``weight`` (share of the tracks, 0–1), ``n`` (tracks)."""
    frame = pd.DataFrame(list(map(dict, fit.reliability)))
    for column in ("low", "high", "predicted", "observed"):
        frame[column] = 100 * frame[column]
    return frame[["low", "high", "predicted", "observed", "weight", "n"]]


def fit_benchmark_table(results: dict) -> pd.DataFrame:
    """One row per candidate, best AUC first: ``model``, then per metric its mean and ``±``
    (std over folds × seeds), overall and on the era check (``era AUC`` …)."""
    rows = []
    for name, entry in results["candidates"].items():
        row = {"model": CANDIDATE_NAMES.get(name, name)}
        for prefix, words in (("", ""), ("era_", "era ")):
            for key, label in FIT_METRICS.items():
                row[words + label], row[f"{words}{label} ±"] = entry[prefix + key]["mean"], entry[prefix + key]["std"]
        rows.append(row)
    return pd.DataFrame(rows).sort_values("AUC", ascending=False, ignore_index=True)


def margin_verdict(mean: float, se: float) -> str:
    """``"level with"`` inside ``LEVEL_WITHIN_SE`` standard errors of 0, else ``"ahead of"`` /
    ``"behind"``."""
    if is_level(mean, se):
        return "level with"
    return "ahead of" if mean > 0 else "behind"


def fit_margin_table(results: dict) -> pd.DataFrame:
    """Network − LightGBM AUC paired by fold: rows ``overall`` and ``era check``, columns
    ``mean``, ``std``, ``se`` (treating folds as independent), ``better`` (folds), ``n``,
    ``verdict`` (``margin_verdict``)."""
    labels = {"auc": "overall", "era_auc": "era check"}
    rows = [{"check": labels[key], **{k: value[k] for k in ("mean", "std", "se", "better", "n")},
             "verdict": margin_verdict(value["mean"], value["se"])}
            for key, value in results.get("paired", {}).items() if key in labels]
    return pd.DataFrame(rows, columns=["check", "mean", "std", "se", "better", "n", "verdict"])


def fit_margin_sentence(results: dict) -> str | None:
    """The network against LightGBM in one sentence (None when the run compared no such pair)."""
    table = fit_margin_table(results)
    if table.empty:
        return None
    where = {"overall": "overall", "era check": "on the era check"}
    parts = [f"{row.verdict} LightGBM {where[row.check]} (AUC {signed(row.mean, 4)} ± {row.se:.4f} s.e., better "
             f"in {row.better} of {row.n} folds)" for row in table.itertuples()]
    return "In the benchmark the network is " + "; ".join(parts) + "."


def load_fit_curves(files: dict | None = None) -> dict:
    """The learning curves that cut one side (``python -m benchmarks.fit_curve --vary tiktok`` and
    ``--vary catalogue``): ``{"tiktok": results, "catalogue": results}``, the sides whose file exists."""
    files = files or CURVE_FILES
    return {side: json.loads(Path(path).read_text(encoding="utf-8"))
            for side, path in files.items() if Path(path).is_file()}


def fit_limit_sentence(curves: dict, candidate: str = "network") -> str | None:
    """What limits the fit, in one sentence from the last doubling of each side's tracks
    (``last_doubling[<candidate>:auc]``: full training fold minus its half, paired by fold);
    None unless both sides' curves are there and are not a --quick run's."""
    if set(curves) != {"tiktok", "catalogue"} or any(c["meta"].get("quick") for c in curves.values()):
        return None
    gains = {side: curves[side]["last_doubling"][f"{candidate}:auc"] for side in curves}

    def said(d: dict) -> str:
        return f"{signed(d['mean'], 4)} ± {d['se']:.4f} s.e., better in {d['better']} of {d['n']} folds"

    tiktok_helps = gains["tiktok"]["mean"] > 0 and not is_level(gains["tiktok"]["mean"], gains["tiktok"]["se"])
    verdict = ("so what limits the fit here is how many TikTok tracks there are, not the model"
               if tiktok_helps and is_level(gains["catalogue"]["mean"], gains["catalogue"]["se"])
               else "so neither side's size alone explains the limit")
    return (f"Why the fit is not sharper: doubling the TikTok tracks the model learns from raised AUC by "
            f"{said(gains['tiktok'])}; doubling the catalogue tracks, by {said(gains['catalogue'])}; {verdict}. "
            f"Reproduce: `{curves['tiktok']['meta']['command']}` and `{curves['catalogue']['meta']['command']}`.")
