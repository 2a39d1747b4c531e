"""Memory of `python -m virality score` on 2,000,000 rows, read in chunks or in one pass.

Run: ``flock /tmp/virality-timing.lock python -m benchmarks.score_memory`` (``--data`` is
accepted and ignored: the tracks are invented, seeded, as in ``benchmarks.score``).

Each measurement is a new process running the CLI exactly as a user does (stdout, stderr,
exit status), which then reports its own peak resident memory: ``VmHWM`` of
``/proc/self/status``, which starts afresh at ``exec`` (``ru_maxrss`` does not: it keeps the
parent's peak, here the 2-million-row table this process built). "One pass" is the same code
with ``SCORE_CHUNK_ROWS`` raised above the row count (the way the command read files
before). Both must write the same bytes and the same stderr. Then the end-to-end time of
the chunked command on 100,000 rows, ``REPEAT`` rounds; with ``--against DIR`` (e.g.
``/work/main``) each round also times the command of the checkout in DIR on the same file,
interleaved, so machine load hits both alike. Last, in this process on 1 thread: the CPU time
of ``score_file`` on the 100,000 rows by chunk size (``REPEAT`` interleaved rounds, medians),
of the formula neutralisation ``score -o`` now does (``neutralise_formulas`` on the scored
table), and of both models' forward passes: the scoring path (``virality.model.inference``) by
chunk size against the modules' own ``forward``.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import parser, write_result
from benchmarks.score import invented_tracks

ROOT = Path(__file__).resolve().parent.parent
BIG_ROWS = 2_000_000
SMALL_ROWS = 100_000
REPEAT = 5
CHILD = """
import json, resource, runpy, sys
import virality.batch.score as score
if sys.argv[1] != "default":
    score.SCORE_CHUNK_ROWS = int(sys.argv[1])
sys.argv = ["virality", "score", *sys.argv[2:]]
code = 0
try:
    runpy.run_module("virality", run_name="__main__")
except SystemExit as end:
    code = end.code
try:
    status = open("/proc/self/status").read()
    peak_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
except (OSError, StopIteration):
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"code": code, "peak_rss_mb": peak_kb / 1024, "cpu_s": usage.ru_utime + usage.ru_stime}))
"""


def run(chunk_rows: str, source: Path, out: Path, checkout: Path = ROOT) -> dict:
    """One CLI run in a new process: exit code, peak RSS (MB), CPU and wall seconds, stderr, output SHA-256."""
    start = time.perf_counter()
    child = CHILD if checkout == ROOT else CHILD.replace("import virality.batch.score as score\n", "")
    done = subprocess.run([sys.executable, "-c", child, chunk_rows, str(source), "-o", str(out)], cwd=checkout,
                          capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    report = json.loads(done.stdout.strip().splitlines()[-1])
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    stderr = done.stderr.replace(str(out), "OUT")
    return {**report, "wall_s": wall, "stderr": stderr, "sha256": digest, "out_mb": out.stat().st_size / 1e6}


def in_process(small: Path, folder: Path) -> dict:
    """CPU seconds (medians of ``REPEAT``) of ``score_file`` by chunk size, and of neutralising
    the formula cells of the scored table, in this process on 1 torch thread."""
    import torch

    from virality.batch.score import neutralise_formulas, reuse_freed_memory, score_file, score_frame
    from virality.data.reading import read_csv_file
    from virality.model.prediction import load_predictor

    torch.set_num_threads(1)
    reuse_freed_memory()  # as the command does
    predictor = load_predictor()
    sizes = {"25,000": 25_000, "50,000 (shipped)": 50_000, "one pass": SMALL_ROWS * 2}
    runs = {label: [] for label in sizes}
    for _ in range(REPEAT):
        for label, size in sizes.items():
            start = time.process_time()
            score_file(small, folder / "in_process.csv", predictor, chunk_rows=size)
            runs[label].append(time.process_time() - start)
    scored = score_frame(read_csv_file(small), predictor)
    forwards = forward_passes(predictor, scored.values.to_numpy())
    table = scored.table
    neutral = []
    for _ in range(REPEAT):
        start = time.process_time()
        neutralise_formulas(table)
        neutral.append(time.process_time() - start)
    return {"score_file_cpu_s": {k: statistics.median(v) for k, v in runs.items()}, "runs": runs,
            "neutralise_cpu_s": statistics.median(neutral), "forward_cpu_s": forwards}


def forward_passes(predictor, X) -> dict:
    """CPU seconds (medians of ``REPEAT`` interleaved rounds) of both models' forward passes
    (popularity and TikTok fit) over ``X``: the scoring path by chunk size, and the modules'
    own ``forward`` (the path before ``virality.model.inference``) at the shipped chunk size."""
    from virality.model.inference import run_chunked
    from virality.model.prediction import CHUNK_ROWS

    paths = {f"scoring path, {size:,} rows" + (" (shipped)" if size == CHUNK_ROWS else ""):
             (predictor._score_forward, predictor._fit_forward, size) for size in (512, 1024, 2048)}
    paths[f"modules' forward, {CHUNK_ROWS:,} rows"] = (predictor.model, predictor.fit, CHUNK_ROWS)
    runs = {label: [] for label in paths}
    for _ in range(REPEAT):
        for label, (score, fit, size) in paths.items():
            start = time.process_time()
            run_chunked(score, X, size)
            run_chunked(fit, X, size)
            runs[label].append(time.process_time() - start)
    return {label: statistics.median(v) for label, v in runs.items()}


def with_bad_rows(n: int):
    """``invented_tracks(n)`` with a bad cell every 50,000 rows, so the problem listing is compared too."""
    frame = invented_tracks(n).astype({"tempo": object})
    frame.loc[::50_000, "tempo"] = "fast"
    return frame


def main() -> None:
    options = parser(__doc__.splitlines()[0])
    options.add_argument("--against", type=Path, help="another checkout to time on the same 100k-row file")
    against = options.parse_args().against
    load = [os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        big, small = folder / "big.csv", folder / "small.csv"
        with_bad_rows(BIG_ROWS).to_csv(big, index=False)
        invented_tracks(SMALL_ROWS).to_csv(small, index=False)
        chunked = run("default", big, folder / "chunked.csv")
        one_pass = run(str(BIG_ROWS * 2), big, folder / "one_pass.csv")
        runs, other_runs = [], []
        for _ in range(REPEAT):
            runs.append(run("default", small, folder / "small_out.csv"))
            if against:
                other_runs.append(run("default", small, folder / "other_out.csv", against.resolve()))
        stages = in_process(small, folder)
        big_mb = big.stat().st_size / 1e6
    load.append(os.getloadavg())
    times, other = [r["wall_s"] for r in runs], [r["wall_s"] for r in other_runs]
    cpu, other_cpu = [r["cpu_s"] for r in runs], [r["cpu_s"] for r in other_runs]
    from virality.batch.score import SCORE_CHUNK_ROWS

    same_bytes = chunked["sha256"] == one_pass["sha256"]
    same_stderr = chunked["stderr"] == one_pass["stderr"]
    payload = {"rows": BIG_ROWS, "file_mb": round(big_mb, 1), "chunk_rows": SCORE_CHUNK_ROWS,
               "chunked": chunked, "one_pass": one_pass, "same_bytes": same_bytes, "same_stderr": same_stderr,
               "small_rows": SMALL_ROWS, "small_wall_s": times, "small_median_s": statistics.median(times),
               "small_cpu_s": cpu, "against": str(against) if against else None, "against_wall_s": other,
               "against_cpu_s": other_cpu, "in_process": stages,
               "load_average_before_after": load}
    lines = [
        "# `score` memory on 2,000,000 rows", "",
        f"`flock /tmp/virality-timing.lock python -m benchmarks.score_memory` — {BIG_ROWS:,} invented tracks "
        f"({big_mb:.0f} MB CSV, a bad tempo cell every 50,000 rows), each run a new process on 1 torch thread; "
        f"2-core machine shared with other jobs (1-minute load average {load[0][0]:.1f} before, {load[1][0]:.1f} "
        "after).", "",
        "| how the file is read | peak resident memory | wall clock | CPU time |", "|---|---|---|---|",
        f"| in chunks of {SCORE_CHUNK_ROWS:,} rows (shipped) | **{chunked['peak_rss_mb']:,.0f} MB** | "
        f"{chunked['wall_s']:.1f} s | {chunked['cpu_s']:.1f} s |",
        f"| in one pass (`SCORE_CHUNK_ROWS` above the row count, as before) | {one_pass['peak_rss_mb']:,.0f} MB | "
        f"{one_pass['wall_s']:.1f} s | {one_pass['cpu_s']:.1f} s |", "",
        f"Output: {'the same bytes' if same_bytes else 'DIFFERENT bytes'} ({chunked['out_mb']:.0f} MB); stderr: "
        f"{'the same' if same_stderr else 'DIFFERENT'} ({len(chunked['stderr'].splitlines())} lines).", "",
        f"End to end on {SMALL_ROWS:,} rows (the file of `benchmarks.score`), chunked: median "
        f"**{statistics.median(times):.2f} s** of {REPEAT} runs ({', '.join(f'{t:.2f}' for t in times)} s); "
        f"CPU time median {statistics.median(cpu):.2f} s.",
    ]
    if against:
        lines += ["", f"Interleaved with the same command of the checkout `{against}` on the same file: median "
                  f"**{statistics.median(other):.2f} s** ({', '.join(f'{t:.2f}' for t in other)} s), CPU time median "
                  f"{statistics.median(other_cpu):.2f} s; ratio this / that {statistics.median(times) / statistics.median(other):.2f} "
                  f"(wall), {statistics.median(cpu) / statistics.median(other_cpu):.2f} (CPU)."]
    lines += ["", f"In this process on {SMALL_ROWS:,} rows (1 thread, CPU medians of {REPEAT} interleaved rounds): "
              "`score_file` by chunk size " + ", ".join(f"{k} rows {v:.2f} s" for k, v in
                                                     stages["score_file_cpu_s"].items())
              + f"; neutralising the formula cells of the scored table {stages['neutralise_cpu_s']:.3f} s.",
              "", "Forward passes of both models (popularity and TikTok fit) over the same rows, same process and "
              "rounds: " + ", ".join(f"{k} {v:.2f} s" for k, v in stages["forward_cpu_s"].items()) + "."]
    write_result("score_memory", payload, "\n".join(lines))


if __name__ == "__main__":
    main()
