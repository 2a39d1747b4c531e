"""Batch scale: 100,000 tracks through `python -m virality score`, and their top drivers.

Run: ``python -m benchmarks.score`` (``--data`` is accepted and ignored: the tracks are
invented, seeded). Goals (issue #6): scoring end to end < 5 s, quoted as a ratio to pandas
reading and writing the same file in the same run; top-two drivers for 100k rows < 30 s.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import parser, write_result

ROOT = Path(__file__).resolve().parent.parent
N_ROWS = 100_000
REPEAT = 3
AGREEMENT_ROWS = 2000


def invented_tracks(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` invented tracks in the demo file's layout (title, artist, 12 characteristics)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "title": [f"Track {i}" for i in range(n)], "artist": [f"Artist {i % 997}" for i in range(n)],
        "danceability": rng.uniform(0.2, 0.95, n).round(3), "energy": rng.uniform(0.1, 1.0, n).round(3),
        "key": rng.integers(0, 12, n), "loudness": rng.uniform(-20, -2, n).round(2),
        "mode": rng.integers(0, 2, n), "speechiness": rng.uniform(0.02, 0.5, n).round(3),
        "acousticness": rng.uniform(0, 1, n).round(3),
        "instrumentalness": np.where(rng.random(n) < 0.7, 0.0, rng.uniform(0, 1, n)).round(3),
        "liveness": rng.uniform(0.03, 0.8, n).round(3), "valence": rng.uniform(0.05, 0.98, n).round(3),
        "tempo": rng.uniform(60, 200, n).round(2), "duration_ms": rng.integers(90_000, 300_000, n),
    })


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_seconds(command: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system, all threads) of a new process."""
    start, cpu = time.perf_counter(), child_cpu()
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
    return time.perf_counter() - start, child_cpu() - cpu


def pandas_round_trip(source: Path, target: Path) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    pd.read_csv(source).to_csv(target, index=False)
    return time.perf_counter() - start, time.process_time() - cpu


def measure_scoring(folder: Path) -> dict:
    source, out = folder / "tracks.csv", folder / "scored.csv"
    invented_tracks(N_ROWS).to_csv(source, index=False)
    cli = [sys.executable, "-m", "virality", "score", str(source), "-o", str(out)]
    imports = [sys.executable, "-c", "import virality.score, virality.predict, virality.cli"]
    runs = {"cli": [], "pandas": [], "imports": []}
    for _ in range(REPEAT):  # interleaved so machine load hits every measurement alike
        runs["pandas"].append(pandas_round_trip(source, folder / "pandas.csv"))
        runs["cli"].append(run_seconds(cli))
        runs["imports"].append(run_seconds(imports))
    scored = pd.read_csv(out)
    medians = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
    return {"rows": N_ROWS, "scored_rows": int(scored["predicted_popularity"].notna().sum()),
            "file_mb": round(source.stat().st_size / 1e6, 1), "runs_wall_cpu_s": runs, "median_s": medians,
            "median_cpu_s": cpu, "ratio_cli_to_pandas": medians["cli"] / medians["pandas"],
            "cpu_ratio_cli_to_pandas": cpu["cli"] / cpu["pandas"]}


def measure_drivers(folder: Path) -> dict:
    """Top-two drivers for every row at the batch IG steps, and how often they match 50 steps."""
    from virality.batch import BATCH_IG_STEPS, batch_attributions, path_attributions
    from virality.explain import IG_STEPS, integrated_gradients, top_drivers
    from virality.features import FEATURE_NAMES
    from virality.predict import load_predictor

    predictor = load_predictor()
    values = invented_tracks(N_ROWS).rename(columns={"duration_ms": "duration"})[list(FEATURE_NAMES)].astype(float)
    start = time.perf_counter()
    attributions = batch_attributions(predictor, values, BATCH_IG_STEPS)
    top_drivers(attributions)
    seconds = time.perf_counter() - start
    sample = values.iloc[:AGREEMENT_ROWS].to_numpy()
    fast = top_drivers(pd.DataFrame(path_attributions(predictor, sample, n_steps=BATCH_IG_STEPS)[0],
                                    columns=list(FEATURE_NAMES)))
    exact = top_drivers(pd.DataFrame(integrated_gradients(predictor, sample, n_steps=IG_STEPS)[0],
                                     columns=list(FEATURE_NAMES)))
    same_sets = np.mean([set(fast.loc[i, ["up_1", "up_2"]]) == set(exact.loc[i, ["up_1", "up_2"]])
                         and set(fast.loc[i, ["down_1", "down_2"]]) == set(exact.loc[i, ["down_1", "down_2"]])
                         for i in fast.index])
    import torch

    return {"rows": N_ROWS, "ig_steps": BATCH_IG_STEPS, "ig_function": path_attributions.__name__,
            "seconds": seconds, "torch_threads": torch.get_num_threads(),
            "agreement_rows": AGREEMENT_ROWS, "reference_steps": IG_STEPS,
            "same_top2_sets": float(same_sets), "same_four_in_order": float((fast.values == exact.values).all(1).mean())}


def main() -> None:
    parser(__doc__.splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scoring = measure_scoring(Path(tmp))
    drivers = measure_drivers(Path(tmp))
    med, cpu = scoring["median_s"], scoring["median_cpu_s"]
    markdown = f"""# Batch scoring at scale

`python -m benchmarks.score` — {N_ROWS:,} invented tracks ({scoring['file_mb']} MB CSV), medians of {REPEAT}
interleaved runs on the same machine in the same run.

| step | median wall clock | median CPU time |
|---|---|---|
| `python -m virality score tracks.csv -o scored.csv` (end to end, new process) | {med['cli']:.2f} s | {cpu['cli']:.2f} s |
| of which Python start-up and imports (`python -c "import virality.score …"`) | {med['imports']:.2f} s | {cpu['imports']:.2f} s |
| pandas `read_csv` + `to_csv` of the same file (baseline, in process) | {med['pandas']:.2f} s | {cpu['pandas']:.2f} s |
| **ratio: virality score / pandas read+write** | **{scoring['ratio_cli_to_pandas']:.1f}×** | **{scoring['cpu_ratio_cli_to_pandas']:.1f}×** |

CPU time (user + system, all threads) is less distorted than wall clock when other jobs share
the cores; the machine load is in the JSON file.

Goal < 5 s end to end: {'met' if med['cli'] < 5 else 'NOT met on this run'} ({scoring['scored_rows']:,} rows scored
with interval and percentile).

## Top drivers for every track

| what | value |
|---|---|
| Integrated Gradients (`{drivers['ig_function']}`) for {drivers['rows']:,} rows at {drivers['ig_steps']} steps + top two up/down | {drivers['seconds']:.1f} s ({drivers['torch_threads']} torch threads) |
| same top-two "pushing up" and "holding back" sets as {drivers['reference_steps']} steps ({drivers['agreement_rows']:,} rows) | {drivers['same_top2_sets']:.1%} |
| same four drivers in the same order | {drivers['same_four_in_order']:.1%} |

Goal < 30 s: {'met' if drivers['seconds'] < 30 else 'NOT met on this run'}.
"""
    write_result("score", {"scoring": scoring, "drivers": drivers, "load_average": os.getloadavg()}, markdown)


if __name__ == "__main__":
    main()
