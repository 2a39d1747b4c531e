"""Explain speed and completeness: `python -m benchmarks.explain` (ignores --data).

Measures (medians; each against a baseline measured in the same run):
* one song, one torch thread: IG 50 steps and every other method vs one prediction;
* the Explain page: AppTest first render, rerun with nothing changed, rerun with a new song;
* the interaction view for a new song (per-song matrix + pair grid) and Friedman's H (cold);
* 100,000 rows, one thread (as the Batch page): ``top_drivers(attribute_frame(...))`` vs plain prediction, and
  how often its top drivers agree with 50-step IG (5,000-row subset);
* completeness: max |delta| per method over the demo tracks and 300 typical tracks.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.common import median_ms, parser, time_calls, write_result
from virality.data.demo import demo_song, demo_tracks
from virality.explain.methods import METHODS, IntegratedGradients, attribute, attribute_frame, song_array, top_drivers
from virality.explain.views import friedman_h, pair_grid, pairwise_interactions, sample_typical_tracks
from virality.features import FEATURE_NAMES
from virality.model.prediction import load_predictor

ROOT = Path(__file__).resolve().parent.parent


def seconds(fn, repeat: int = 3) -> float:
    """Median wall-clock seconds of ``repeat`` calls (no warm-up: cold costs count)."""
    return statistics.median(time_calls(fn, repeat=repeat, warmup=0))


def single_song(predictor) -> dict:
    x = song_array(demo_song("Demo — Summer Hook"))
    result = {"predict_one_ms": median_ms(time_calls(lambda: predictor.predict_array(x), repeat=100))}
    result["ig50_ms"] = median_ms(time_calls(lambda: attribute(predictor, x, method="ig", n_steps=50), repeat=100))
    for method in METHODS:
        result[f"{method}_ms"] = median_ms(time_calls(lambda m=method: attribute(predictor, x, method=m), repeat=30))
    return result


def page_timings() -> dict:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    start = time.perf_counter()
    at.switch_page("pages/explain.py").run()
    first = time.perf_counter() - start
    assert not at.exception, at.exception
    rerun = seconds(lambda: at.run(), repeat=5)
    rng = np.random.default_rng(0)

    def new_song():
        song = dict(demo_song("Demo — Late Night Drive"), danceability=float(rng.uniform(0.3, 0.95)))
        at.session_state["song"] = song
        at.run()

    changed = seconds(new_song, repeat=5)
    switches = {}
    for method in METHODS:
        start = time.perf_counter()
        at.selectbox(key="explain_method").set_value(method).run()
        switches[method] = time.perf_counter() - start
    assert not at.exception, at.exception
    return {"page_first_render_s": first, "page_rerun_s": rerun, "page_new_song_s": changed,
            "page_method_switch_cold_s": switches}


def interaction_timings(predictor) -> dict:
    rng = np.random.default_rng(1)

    def per_song():
        song = dict(demo_song("Demo — Phonk Sprint"), energy=float(rng.uniform(0.2, 0.9)))
        pairwise_interactions(predictor, song)
        pair_grid(predictor, song, "danceability", "energy")

    sample = sample_typical_tracks(predictor.info.distribution, 50, seed=1)
    return {"interactions_new_song_s": seconds(per_song, repeat=7),
            "friedman_h_cold_s": seconds(lambda: friedman_h(predictor, sample), repeat=3)}


def many_rows(predictor, n: int = 100_000) -> dict:
    X = sample_typical_tracks(predictor.info.distribution, n, seed=2).to_numpy(np.float32)
    predict_s = seconds(lambda: predictor.predict_array(X), repeat=3)
    drivers_s = seconds(lambda: top_drivers(attribute_frame(predictor, X)), repeat=3)
    subset = X[:5000]
    quick = top_drivers(attribute_frame(predictor, subset))
    exact = top_drivers(pd.DataFrame(attribute(predictor, subset, method="ig")[0], columns=list(FEATURE_NAMES)))
    agree = float((quick == exact).all(axis=1).mean())
    agree_first = float(((quick["up_1"] == exact["up_1"]) & (quick["down_1"] == exact["down_1"])).mean())
    return {"rows": n, "predict_s": predict_s, "drivers_s": drivers_s, "drivers_over_predict": drivers_s / predict_s,
            "batch_steps": IntegratedGradients.batch_steps, "top2_agreement_with_ig50": agree, "top1_agreement_with_ig50": agree_first}


def completeness(predictor) -> dict:
    X = np.vstack([demo_tracks()[list(FEATURE_NAMES)].to_numpy(),
                   sample_typical_tracks(predictor.info.distribution, 300, seed=3).to_numpy()])
    result = {}
    for method in METHODS:
        _, delta = attribute(predictor, X, method=method)
        result[method] = {"max_abs_delta": float(np.abs(delta).max()),
                          "median_abs_delta": float(np.median(np.abs(delta))), "tolerance": METHODS[method].tolerance}
    return result


def markdown(r: dict) -> str:
    s, p, i, m = r["single_song"], r["page"], r["interactions"], r["many_rows"]
    lines = ["# Explain benchmark", "",
             "`python -m benchmarks.explain` · medians · bundled model in artifacts/ · shared 2-core machine", "",
             "| measurement | result | goal |", "|---|---|---|",
             f"| IG 50 steps, one song, 1 thread | {s['ig50_ms']:.1f} ms "
             f"({s['ig50_ms'] / s['predict_one_ms']:.0f}× one prediction, {s['predict_one_ms']:.2f} ms) | < 25 ms |"]
    for method in METHODS:
        lines.append(f"| {METHODS[method].label}, one song, 1 thread | {s[f'{method}_ms']:.1f} ms | |")
    lines += [f"| Explain page first render (AppTest, cold caches) | {p['page_first_render_s']:.2f} s | |",
              f"| Explain page rerun, same song | {p['page_rerun_s']:.2f} s | < 1 s |",
              f"| Explain page rerun, new song | {p['page_new_song_s']:.2f} s | < 1 s |",
              "| Explain page, first switch to each method (cold global view) | "
              + ", ".join(f"{k} {v:.2f} s" for k, v in p["page_method_switch_cold_s"].items()) + " | |",
              f"| interaction view, new song (matrix + pair grid) | {i['interactions_new_song_s'] * 1000:.0f} ms "
              "| < 3 s |",
              f"| Friedman's H over 50 typical tracks (cold, cached once) | {i['friedman_h_cold_s']:.2f} s | < 3 s |",
              f"| top-2 drivers, {m['rows']:,} rows, IG {m['batch_steps']} steps, 1 thread | {m['drivers_s']:.1f} s "
              f"({m['drivers_over_predict']:.0f}× predicting them, {m['predict_s']:.2f} s) | < 30 s |",
              f"| same top-2 up and down as IG 50 steps (5,000 rows) | {m['top2_agreement_with_ig50']:.1%} "
              f"(top-1: {m['top1_agreement_with_ig50']:.1%}) | |", "",
             "Completeness (|Σ attributions − (f(song) − f(baseline))|, points) over the 8 demo tracks and 300 "
              "typical tracks, typical-track baseline:", "",
              "| method | median | max | stated tolerance |", "|---|---|---|---|"]
    for method, c in r["completeness"].items():
        tolerance = "none (not additive)" if c["tolerance"] is None else f"{c['tolerance']}"
        lines.append(f"| {METHODS[method].label} | {c['median_abs_delta']:.4f} | {c['max_abs_delta']:.4f} | {tolerance} |")
    return "\n".join(lines)


def main() -> None:
    parser("Explain speed and completeness").parse_args()
    predictor = load_predictor()
    torch.set_num_threads(1)
    result = {"single_song": single_song(predictor), "interactions": interaction_timings(predictor),
              "completeness": completeness(predictor)}
    result["page"] = page_timings()
    result["many_rows"] = many_rows(predictor)
    write_result("explain", result, markdown(result))


if __name__ == "__main__":
    main()
