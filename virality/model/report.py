"""The committed benchmark results as tables for the Model page and the model card.

Reads ``benchmarks/results/models.json`` (written by ``python -m benchmarks.models``): no
data set needed, no rows of it stored there (only metrics, counts and per-decile summaries).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from virality.config import RESULTS_DIR

if TYPE_CHECKING:
    from virality.model.metadata import IntervalInfo

RESULTS_FILE = RESULTS_DIR / "models.json"
METRIC_LABELS = {"r2": "R²", "rmse": "RMSE", "mae": "MAE", "spearman": "Spearman"}


class NoResults(FileNotFoundError):
    """The benchmark has not been run (or its results file is missing)."""


def load_results(path: str | Path | None = None) -> dict:
    """The benchmark's JSON (default ``RESULTS_FILE``); ``NoResults`` when it is missing."""
    path = Path(path or RESULTS_FILE)
    if not path.is_file():
        raise NoResults(f"no benchmark results at {path}: run `python -m benchmarks.models --data PATH`")
    return json.loads(path.read_text(encoding="utf-8"))


def benchmark_table(results: dict) -> pd.DataFrame:
    """One row per candidate, best RMSE first: ``model``, then per metric ``<m>`` (mean) and
    ``<m> ±`` (std over folds × seeds), ``coverage`` (80 % interval, networks only)."""
    rows = []
    for name, entry in results["candidates"].items():
        row = {"model": name}
        for key, label in METRIC_LABELS.items():
            row[label], row[f"{label} ±"] = entry[key]["mean"], entry[key]["std"]
        row["80 % coverage"] = entry["coverage"]["mean"] if "coverage" in entry else np.nan
        rows.append(row)
    return pd.DataFrame(rows).sort_values("RMSE", ignore_index=True)


def paired_table(results: dict) -> pd.DataFrame:
    """Network − baseline RMSE per (seed, fold): ``comparison``, ``mean``, ``std``, ``se``, ``wins``, ``n``."""
    return pd.DataFrame([{"comparison": k, **v} for k, v in results["paired"].items()])


def heldout_bins(results: dict, name: str) -> pd.DataFrame:
    """Per decile of held-out predicted score: mean predicted, mean / 10th / 90th pct actual."""
    return pd.DataFrame(results["candidates"][name]["heldout_histogram"]["binned"])


def heldout_histogram(results: dict, name: str) -> pd.DataFrame:
    """Counts of held-out (predicted bin, actual bin) pairs: columns ``predicted``, ``actual``
    (bin centres, points) and ``count`` (over all seeds)."""
    hist = results["candidates"][name]["heldout_histogram"]
    edges = np.asarray(hist["edges"])
    centres = (edges[:-1] + edges[1:]) / 2
    counts = np.asarray(hist["counts"])
    p, a = np.meshgrid(centres, centres, indexing="ij")
    return pd.DataFrame({"predicted": p.ravel(), "actual": a.ravel(), "count": counts.ravel()})


def coverage_table(results: dict, name: str) -> pd.DataFrame:
    """The network's held-out 80 % interval coverage per decile of predicted score:
    ``decile`` (1 = lowest scores), ``coverage`` (mean over seeds), ``std`` (over seeds) and,
    when the benchmark scored it, ``constant_coverage`` of the constant interval (the training
    tracks' 10th–90th percentiles for every track): the honest alternative."""
    entry = results["candidates"][name]
    table = pd.DataFrame({"decile": np.arange(1, 11), "coverage": entry["coverage"]["by_decile_mean"],
                          "std": entry["coverage"]["by_decile_std"]})
    if "coverage_constant" in entry:
        table["constant_coverage"] = entry["coverage_constant"]["by_decile_mean"]
    return table


def interval_facts(results: dict, name: str, interval: IntervalInfo, noise: dict | None = None) -> str:
    """One paragraph on the shipped interval: how it is calibrated (``interval``, from the
    bundle's metadata), its held-out coverage overall and its mean width in the benchmark, and the
    deciles outside 80 % ± 3 points; with ``noise`` (``benchmarks/results/coverage_noise.json``),
    how many deciles an exactly-right interval would put outside by chance."""
    cov = results["candidates"][name]["coverage"]
    outside = [f"decile {d + 1} ({c:.1%})" for d, c in enumerate(cov["by_decile_mean"])
               if abs(c - interval.level) > 0.03]
    if interval.calibration is not None:
        how = (f"Calibration: {interval.calibration}, {interval.calibration_tracks:,} tracks; the ends are "
               f"{form_words(interval.form)} in the score, the shape chosen by cross-validated "
               "per-decile coverage on those tracks alone.")
    else:
        how = "Calibrated on the validation tracks only (an older bundle)."
    verdict = ("Every decile is within ±3 points of the target." if not outside
               else f"Outside ±3 points: {', '.join(outside)}.")
    if noise:
        verdict += (f" With ~{noise['tracks_per_decile']} tracks a decile, even an exactly-right interval puts "
                    f"{noise['expected_deciles_outside']:.1f} deciles outside ±3 points on average "
                    f"(`python -m benchmarks.coverage_noise`).")
    against = ""
    if "coverage_constant" in results["candidates"][name]:
        const = results["candidates"][name]["coverage_constant"]
        against = (f" The constant interval (the training tracks' 10th–90th percentiles for every song) covers "
                   f"{const['mean']:.1%}, {const['mean_width']:.0f} points wide; interval score (Winkler, lower is "
                   f"better) {cov['interval_score']:.1f} for the model's interval against {const['interval_score']:.1f}"
                   " for the constant one.")
    return (f"{how} On held-out folds it covers {cov['mean']:.1%} ± {cov['std']:.1%} of tracks overall, "
            f"{cov['mean_width']:.0f} points wide on average.{against} {verdict}")


def load_coverage_noise(path: str | Path | None = None) -> dict | None:
    """``benchmarks/results/coverage_noise.json`` (the noise floor of per-decile coverage), or None."""
    path = Path(path or RESULTS_FILE.with_name("coverage_noise.json"))
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def coverage_labels(coverage: pd.Series) -> pd.Series:
    """Coverage fractions → "80.1 %" text, "—" where a model has no interval (the baselines)."""
    return coverage.map(lambda c: "—" if pd.isna(c) else f"{c:.1%}")


def form_words(form: str) -> str:
    """ "hinge6" → "piecewise linear with 6 knots", "poly2" → "polynomials of degree 2"."""
    size = form.lstrip("abcdefghijklmnopqrstuvwxyz")
    if form.startswith("hinge"):
        return f"piecewise linear with {size} knot{'s' if size != '1' else ''}"
    return f"polynomials of degree {size}"


def duplicate_summary(path: str | Path) -> dict:
    """How the data set repeats tracks: rows, distinct tracks, tracks in several rows, the
    most rows of one track, tracks whose popularity differs between their rows."""
    import pandas as pd

    from virality.data.reading import read_csv_file
    from virality.data.tracks import ID_COLUMN, TARGET

    frame = read_csv_file(path)
    groups = pd.to_numeric(frame[TARGET], errors="coerce").groupby(frame[ID_COLUMN])
    sizes = groups.size()
    return {"rows": len(frame), "tracks": int(groups.ngroups), "repeated_tracks": int((sizes > 1).sum()),
            "most_rows_of_one_track": int(sizes.max()),
            "tracks_with_differing_popularity": int((groups.nunique() > 1).sum())}


def paired_difference(results: dict, a: str, b: str) -> dict:
    """RMSE(a) − RMSE(b) over the benchmark's (seed, fold) pairs: ``mean``, ``se`` (folds
    treated as independent: a lower bound), ``a_better`` (count), ``n``."""
    diff = np.array([x["rmse"] - y["rmse"] for x, y in zip(results["records"][a], results["records"][b])])
    return {"mean": float(diff.mean()), "se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0,
            "a_better": int(np.sum(diff < 0)), "n": len(diff)}



def classical_baselines(results: dict, network: str) -> list[str]:
    """The non-network models ``network`` was paired against in the benchmark (e.g.
    ``["random_forest", "lightgbm"]``), best RMSE first."""
    names = [key.split(" - ", 1)[1] for key in results["paired"] if key.startswith(f"{network} - ")]
    return sorted(names, key=lambda name: results["candidates"][name]["rmse"]["mean"])


SMALL_MARGIN_POINTS = 1.0  # RMSE points: below this a real margin is still "a little"
LEVEL_WITHIN_SE = 2.0  # a paired margin inside this many standard errors of 0 reads as "level with"


def is_level(mean: float, se: float) -> bool:
    """Whether a paired difference (mean, its standard error) is inside the noise: "level with"."""
    return abs(mean) <= LEVEL_WITHIN_SE * se


def comparison_words(paired: dict) -> str:
    """ "level with", "a little better than", "better than" or "behind" for an RMSE difference
    ``{"mean", "se"}`` (network − other, points): a margin inside two standard errors is "level
    with"; a real margin under one point of RMSE (of ~24) is "a little" better."""
    if is_level(paired["mean"], paired["se"]):
        return "level with"
    if paired["mean"] > 0:
        return "behind"
    return "a little better than" if paired["mean"] > -SMALL_MARGIN_POINTS else "better than"


def headline(results: dict, network: str) -> str | None:
    """One plain sentence from the benchmark: how far off ``network`` typically is (its
    cross-validated MAE) and how it compares with the best classical model, e.g. "Typically
    off by ±19 points of 100 on songs it never saw; level with the best classical model
    (random forest)." None when the benchmark did not score ``network``."""
    if network not in results["candidates"]:
        return None
    sentence = f"Typically off by ±{results['candidates'][network]['mae']['mean']:.0f} points of 100 on songs it never saw"
    baselines = classical_baselines(results, network)
    if baselines:
        best = baselines[0]
        words = comparison_words(results["paired"][f"{network} - {best}"])
        sentence += f"; {words} the best classical model ({best.replace('_', ' ')})"
    return sentence + "."
