"""What-if search against DiCE (random and genetic) on the bundled model, same 20 songs, same run.

    python -m benchmarks.whatif --data ../shared/data/tiktok_tracks.csv

The 20 songs are real tracks (one row per ``track_id``, seeded draw among those the model
scores below its median); the goal is +5 points; the allowed characteristics are the
producer's defaults (``virality.whatif.PRODUCER_CHOICES``) inside the 0.5–99.5 % range of
real tracks. Every suggestion of every method is re-scored by ``Predictor.predict_array``.
DiCE (``dice-ml``, benchmark-only) is installed by `make bench` (see requirements-bench.txt).
Also times k = 4 for one song (the typical track) with the model loaded, 1 torch thread.
"""

from __future__ import annotations

import itertools
import time
import warnings

import numpy as np
import pandas as pd
import torch

from benchmarks.common import median_ms, parser, time_calls, write_result
from virality.data import load_tracks
from virality.features import BY_NAME, FEATURE_NAMES
from virality.predict import load_predictor
from virality.whatif import CONTINUOUS, PRODUCER_CHOICES, _distance, quantile_scale, search, snap_columns

N_SONGS, GAIN, K, MAX_CHANGES, SEED = 20, 5.0, 4, 3, 0


def pick_songs(tracks: pd.DataFrame, predictor) -> pd.DataFrame:
    """20 real tracks the model scores below its median, seeded."""
    scores = predictor.predict_frame(tracks)["predicted_popularity"]
    low = tracks[scores < scores.median()]
    return low.sample(N_SONGS, random_state=SEED)[list(FEATURE_NAMES)].reset_index(drop=True)


class _Regressor:
    """The predictor as DiCE's scikit-learn-style regressor (``predict(DataFrame)``)."""

    def __init__(self, predictor):
        self.predictor = predictor

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predictor.predict_array(frame[list(FEATURE_NAMES)].astype(float).to_numpy())[
            "predicted_popularity"].to_numpy()


def dice_explainers(predictor, tracks: pd.DataFrame):
    """DiCE ``Dice`` objects for methods random and genetic over the real tracks."""
    try:
        import dice_ml
    except ImportError:
        raise SystemExit("dice-ml is missing: `make bench` installs it, or run "
                         "`.venv/bin/pip install -r requirements-bench.txt` and "
                         "`.venv/bin/pip install --no-deps -r requirements-bench-nodeps.txt`") from None

    frame = tracks[list(FEATURE_NAMES)].copy()
    frame["key"] = frame["key"].astype(int).astype(str)
    frame["mode"] = frame["mode"].astype(int).astype(str)
    frame["popularity"] = _Regressor(predictor).predict(frame.astype({"key": float, "mode": float}))
    continuous = [n for n in FEATURE_NAMES if not BY_NAME[n].is_discrete]
    data = dice_ml.Data(dataframe=frame, continuous_features=continuous, outcome_name="popularity")
    model = dice_ml.Model(model=_Regressor(predictor), backend="sklearn", model_type="regressor")
    return {m: dice_ml.Dice(data, model, method=m) for m in ("random", "genetic")}


def run_dice(explainer, method: str, song: pd.Series, target: float, permitted: dict) -> np.ndarray:
    """(≤k, 12) DiCE counterfactuals for one song (empty when it finds none)."""
    query = song.to_frame().T.copy()
    query["key"] = query["key"].astype(int).astype(str)
    query["mode"] = query["mode"].astype(int).astype(str)
    kwargs = dict(total_CFs=K, desired_range=[target, 100.0], features_to_vary=list(PRODUCER_CHOICES),
                  permitted_range=permitted)
    if method == "random":
        kwargs["random_seed"] = SEED
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = explainer.generate_counterfactuals(query, verbose=False, **kwargs)
    except Exception as err:  # DiCE raises when it finds nothing
        print(f"  dice {method}: {type(err).__name__}: {err}")
        return np.empty((0, len(FEATURE_NAMES)))
    cfs = result.cf_examples_list[0].final_cfs_df
    if cfs is None or not len(cfs):
        return np.empty((0, len(FEATURE_NAMES)))
    return cfs[list(FEATURE_NAMES)].astype(float).to_numpy()


def measure(predictor, x0: np.ndarray, X: np.ndarray, target: float) -> dict:
    """Per-song quality of ≤k suggestions X (n, 12) for the original x0 (12,)."""
    if not len(X):
        return {"n": 0, "valid": 0, "changes": [], "overshoot": [], "altered_disallowed": 0, "distance": [],
                "distinct_sets": 0,
                "ood": 0}
    scores = predictor.predict_array(X)["predicted_popularity"].to_numpy()
    changed = ~np.isclose(X, x0, rtol=0, atol=1e-9)
    allowed = np.array([n in PRODUCER_CHOICES for n in FEATURE_NAMES])
    return {"n": len(X), "valid": int((scores >= target).sum()), "changes": changed[:, allowed].sum(1).tolist(),
            "overshoot": (scores - target)[scores >= target].tolist(),
            "altered_disallowed": int(changed[:, ~allowed].any(1).sum()),
            "distance": _distance(predictor, x0, X).tolist(),
            "distinct_sets": len({tuple(np.flatnonzero(r)) for r in changed}),
            "ood": int(predictor.is_out_of_distribution(X).sum())}


def grid_closest(predictor, x0: np.ndarray, target: float, levels: int = 81) -> float:
    """Smallest distance (quantile units) of any edit of one or two allowed characteristics that
    reaches ``target``, found by exhaustive search on a ``levels`` × ``levels`` grid of each
    pair inside the range of real tracks (slider-snapped): a reference for "closest possible"."""
    scale = quantile_scale(predictor)
    dist = predictor.metadata["distribution"]
    cont = list(CONTINUOUS)
    allowed = [cont.index(FEATURE_NAMES.index(n)) for n in PRODUCER_CHOICES]
    u0 = scale.to_quantile(x0[None])[0]
    u_low = scale.to_quantile(np.asarray(dist["low"], float)[None])[0]
    u_high = scale.to_quantile(np.asarray(dist["high"], float)[None])[0]
    best = np.inf
    for a, b in itertools.combinations_with_replacement(allowed, 2):
        grid_a, grid_b = np.meshgrid(np.linspace(u_low[a], u_high[a], levels), np.linspace(u_low[b], u_high[b], levels))
        u = np.tile(u0, (grid_a.size, 1))
        u[:, a], u[:, b] = grid_a.ravel(), grid_b.ravel()
        X = np.tile(x0, (len(u), 1))
        X[:, [cont[a], cont[b]]] = snap_columns(scale.to_raw(u)[:, [a, b]], [cont[a], cont[b]])
        ok = np.clip(predictor.raw_scores(X), 0, 100) >= target
        if ok.any():
            best = min(best, float(_distance(predictor, x0, X[ok]).min()))
    return best


def summarise(rows: list[dict], seconds: list[float]) -> dict:
    n = sum(r["n"] for r in rows)
    changes = [c for r in rows for c in r["changes"]]
    distance = [d for r in rows for d in r["distance"]]
    return {"suggestions": n, "valid_share": sum(r["valid"] for r in rows) / max(n, 1),
            "songs_with_k_valid": sum(r["valid"] >= K for r in rows),
            "mean_changes": float(np.mean(changes)) if changes else float("nan"),
            "mean_distance": float(np.mean(distance)) if distance else float("nan"),
            "mean_overshoot_points": float(np.mean([v for r in rows for v in r["overshoot"]] or [np.nan])),
            "mean_closest_distance": float(np.mean([min(r["distance"]) for r in rows if r["distance"]])),
            "mean_distinct_sets": float(np.mean([r["distinct_sets"] for r in rows])),
            "ood_share": sum(r["ood"] for r in rows) / max(n, 1),
            "altered_disallowed_share": sum(r["altered_disallowed"] for r in rows) / max(n, 1),
            "median_seconds": float(np.median(seconds))}


def main() -> None:
    args = parser(__doc__).parse_args()
    torch.set_num_threads(1)
    predictor = load_predictor()
    tracks = load_tracks(args.data).tracks  # one row per track_id
    songs = pick_songs(tracks, predictor)
    dist = predictor.metadata["distribution"]
    permitted = {n: [float(dist["low"][j]), float(dist["high"][j])] for j, n in enumerate(FEATURE_NAMES)
                 if n in PRODUCER_CHOICES}
    explainers = dice_explainers(predictor, tracks)
    per_method: dict[str, list[dict]] = {"virality": [], "dice_random": [], "dice_genetic": []}
    seconds: dict[str, list[float]] = {m: [] for m in per_method}
    grid_best: list[float] = []
    for i, song in songs.iterrows():
        x0 = song.to_numpy(float)
        start = time.perf_counter()
        result = search(predictor, dict(song), gain=GAIN, k=K, max_changes=MAX_CHANGES)
        seconds["virality"].append(time.perf_counter() - start)
        target = result.target
        ours = np.array([[s.song[n] for n in FEATURE_NAMES] for s in result.suggestions]).reshape(-1, len(FEATURE_NAMES))
        per_method["virality"].append(measure(predictor, x0, ours, target))
        grid_best.append(grid_closest(predictor, x0, target))
        for method, explainer in explainers.items():
            start = time.perf_counter()
            X = run_dice(explainer, method, song, target, permitted)
            seconds[f"dice_{method}"].append(time.perf_counter() - start)
            per_method[f"dice_{method}"].append(measure(predictor, x0, X, target))
        print(f"song {i + 1}/{N_SONGS}: " + ", ".join(f"{m} {r[-1]['valid']}/{r[-1]['n']} valid"
                                                     for m, r in per_method.items()))
    summary = {m: summarise(rows, seconds[m]) for m, rows in per_method.items()}
    reachable = [d for d in grid_best if np.isfinite(d)]
    grid_mean = float(np.mean(reachable)) if reachable else float("nan")
    typical = predictor.typical_song
    single = time_calls(lambda: search(predictor, typical, gain=GAIN, k=K), repeat=60, warmup=5)
    page_ms = page_rerun_ms()
    payload = {"page_rerun_new_goal_median_ms": page_ms, "grid_closest_two_changes": grid_best, "songs": N_SONGS, "gain": GAIN, "k": K, "max_changes": MAX_CHANGES, "vary": list(PRODUCER_CHOICES),
               "summary": summary, "single_song_k4_median_ms": median_ms(single), "per_song": per_method}
    write_result("whatif", payload, markdown(summary, median_ms(single), page_ms, grid_mean, len(reachable)))


def page_rerun_ms(repeat: int = 15) -> float:
    """Median wall-clock ms of a What-if page rerun (Streamlit AppTest, in process) after the
    goal changes, so the search runs anew each time (not from the page's cache)."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=120).run()
    app.switch_page("pages/3_What_if.py").run()
    times = []
    for i in range(repeat):
        app.number_input(key="whatif_gain").set_value(2.0 + 0.5 * i)
        start = time.perf_counter()
        app.run()
        times.append(time.perf_counter() - start)
    return median_ms(times)


def markdown(summary: dict, single_ms: float, page_ms: float, grid_mean: float, n_grid: int) -> str:
    base = summary["dice_random"]
    lines = [f"What-if search on {N_SONGS} real tracks, goal +{GAIN:g} points, k = {K}, allowed: "
             f"{', '.join(PRODUCER_CHOICES)} (range of real tracks); all suggestions re-scored by the predictor.",
             "",
             "| method | suggestions | valid | points above target (valid, mean) | songs with 4 valid | changes (mean) "
             "| distance (quantile units) "
             "| closest of the 4 "
             "| distinct change sets of 4 | out of distribution | altered a disallowed characteristic "
             "| median time per song | time vs DiCE random |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['suggestions']} | {s['valid_share']:.0%} | {s['mean_overshoot_points']:.2f} | "
                     f"{s['songs_with_k_valid']}/{N_SONGS} | "
                     f"{s['mean_changes']:.2f} | {s['mean_distance']:.3f} | {s['mean_closest_distance']:.3f} | "
                     f"{s['mean_distinct_sets']:.2f} | "
                     f"{s['ood_share']:.0%} | {s['altered_disallowed_share']:.0%} | "
                     f"{s['median_seconds'] * 1000:.0f} ms | "
                     f"{s['median_seconds'] / base['median_seconds']:.3f}× |")
    ours = summary["virality"]
    lines += ["", "Changes count the allowed characteristics moved; distance is the L1 distance in quantile "
              "units of real tracks (`virality.whatif._distance`). DiCE rounds values to the data's precision, "
              "which can alter characteristics it was told not to vary (counted in its own column).",
              "", f"Distance vs DiCE random: {ours['mean_distance'] / base['mean_distance']:.2f}× over all "
              f"suggestions, {ours['mean_closest_distance'] / base['mean_closest_distance']:.2f}× for each song's "
              f"closest. Exhaustive reference (every edit of 1–2 allowed characteristics on an 81 × 81 grid "
              f"per pair, `grid_closest`): the closest valid edit averages {grid_mean:.3f} over the {n_grid} songs "
              f"where one exists, so a third of DiCE random's closest ({base['mean_closest_distance'] / 3:.3f}) "
              f"is {'within' if grid_mean <= base['mean_closest_distance'] / 3 else 'beyond'} reach of 1–2 changes. "
              f"k = 4 for one song (typical track), model loaded, 1 torch thread: median {single_ms:.1f} ms. "
              f"What-if page rerun after a new goal (AppTest, search not cached): median {page_ms:.0f} ms."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
