"""Core speed: one prediction, a Predict-page rerun against a hello-world page, cold start.

    python -m benchmarks.predict            # writes benchmarks/results/predict.{md,json}

1. ``Predictor.predict_song`` with the model loaded (1 torch thread), median of 500 calls,
   beside the bare model forward pass on one row (the floor).
2. A rerun after a slider move, measured with Streamlit's AppTest for ``app.py`` and for a
   one-slider hello-world page in the same process, alternating, medians compared.
3. Cold start: ``streamlit run app.py`` from process start to the score visible in headless
   Chromium (torch import and model load included), median of 3 starts.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import median_ms, parser, time_calls, write_result
from virality.features import FEATURE_NAMES, default_song
from virality.model.prediction import load_predictor

ROOT = Path(__file__).resolve().parent.parent
HELLO = """import streamlit as st
st.title("hello")
value = st.slider("x", 0.0, 1.0, 0.5, key="x")
st.metric("value", f"{value:.2f}")
"""


def prediction_latency() -> dict:
    torch.set_num_threads(1)
    predictor = load_predictor()
    song = default_song()
    x = torch.tensor([[song[n] for n in FEATURE_NAMES]], dtype=torch.float32)

    def forward() -> None:
        with torch.inference_mode():
            predictor.model(x)

    return {"predict_song_ms": median_ms(time_calls(lambda: predictor.predict_song(song), 500)),
            "model_forward_ms": median_ms(time_calls(forward, 500))}


def rerun_latency(rounds: int = 30) -> dict:
    from streamlit.testing.v1 import AppTest

    hello_path = Path(tempfile.mkdtemp()) / "hello.py"
    hello_path.write_text(HELLO)
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    hello = AppTest.from_file(str(hello_path), default_timeout=60).run()
    app_times, hello_times = [], []
    values = np.linspace(0.2, 0.9, rounds)
    for i, value in enumerate(values):
        for test, key, times in ((app, "w_danceability", app_times), (hello, "x", hello_times)):
            slider = test.slider(key=key)
            start = time.perf_counter()
            slider.set_value(float(round(value, 2))).run()
            if i >= 3:  # the first reruns warm caches
                times.append(time.perf_counter() - start)
    return {"predict_page_rerun_ms": median_ms(app_times), "hello_rerun_ms": median_ms(hello_times),
            "extra_ms": median_ms(app_times) - median_ms(hello_times)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                            options=options)


def cold_start(starts: int = 3) -> dict:
    """Seconds from ``Popen`` to the score's text in the page; None if no Chromium here."""
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        return {"cold_start_s": None, "note": "chromium/chromedriver not installed"}
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _browser()
    times = []
    try:
        for _ in range(starts):
            port = _free_port()
            start = time.perf_counter()
            server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                                       "--server.headless", "true"], cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                _wait_healthy(port)
                driver.get(f"http://127.0.0.1:{port}/")
                WebDriverWait(driver, 60, poll_frequency=0.02).until(
                    lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricValue"]'))
                times.append(time.perf_counter() - start)
            finally:
                server.terminate()
                server.wait(10)
    finally:
        driver.quit()
    return {"cold_start_s": float(np.median(times)), "cold_start_runs_s": times}


def _wait_healthy(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"streamlit did not start on port {port}")


def main(argv: list[str] | None = None) -> None:
    parser(__doc__.splitlines()[0]).parse_args(argv)
    result = {**prediction_latency(), **rerun_latency(), **cold_start()}
    cold = result["cold_start_s"]
    markdown = "\n".join([
        "| what | median | goal |", "|---|---|---|",
        f"| one prediction, model loaded (`predict_song`, 1 thread) | {result['predict_song_ms']:.3f} ms "
        f"(bare forward pass {result['model_forward_ms']:.3f} ms) | < 1 ms |",
        f"| Predict page rerun after a slider move (AppTest) | {result['predict_page_rerun_ms']:.0f} ms vs "
        f"hello-world {result['hello_rerun_ms']:.0f} ms: **+{result['extra_ms']:.0f} ms** | ≤ +50 ms |",
        f"| cold start, process start → score in Chromium | "
        f"{'n/a' if cold is None else f'{cold:.1f} s'} | < 6 s |",
    ])
    write_result("predict", result, markdown)


if __name__ == "__main__":
    main()
