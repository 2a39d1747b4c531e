"""Shared helpers for the benchmarks: repeatable timing and result files."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "tiktok_tracks.csv"


def parser(description: str) -> argparse.ArgumentParser:
    """Every benchmark takes ``--data`` (some ignore it) so `make bench` can call them alike."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="tracks CSV (used by benchmarks that train)")
    return p


def time_calls(fn: Callable[[], object], repeat: int = 200, warmup: int = 10) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls of ``fn`` after ``warmup`` unmeasured calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def machine() -> dict:
    """Where the numbers were measured."""
    import torch

    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "load_average_at_write": [round(v, 2) for v in os.getloadavg()]}  # 1, 5, 15 min


def write_result(name: str, payload: dict, markdown: str, out: Path | str = RESULTS) -> Path:
    """Save ``<out>/<name>.json`` (``machine()`` first; values JSON cannot hold as ``str``) and
    ``.md`` (default ``out``: benchmarks/results); print the markdown."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), **payload}
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1, default=str) + "\n")
    (out / f"{name}.md").write_text(markdown.rstrip() + "\n")
    print(markdown)
    return out / f"{name}.md"


def run_all(tasks: list, jobs: int, function, *args) -> list:
    """``function(*args, *task)`` for every task, ``jobs`` processes at a time (in process for 1)."""
    if jobs > 1:
        from joblib import Parallel, delayed

        return Parallel(n_jobs=jobs)(delayed(function)(*args, *task) for task in tasks)
    return [function(*args, *task) for task in tasks]
