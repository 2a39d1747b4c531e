"""benchmarks/pretrain.py end to end on invented files, and fine-tuning a pretrained network."""

from __future__ import annotations

import json
import math

import numpy as np

from tests.conftest import TINY_CONFIG, synthetic_tracks
from virality.config import TrainConfig
from virality.data.catalogue import load_fit_data
from virality.data.tracks import TARGET, group_kfold
from virality.features import FEATURE_NAMES
from virality.model.training import continue_training, fit_model, predict_numpy


def write_files(tmp_path):
    """A TikTok file and a catalogue file (the catalogue's own column names), invented."""
    tiktok = synthetic_tracks(120, seed=6, duplicates=10).assign(artist_name="A")
    catalogue = synthetic_tracks(300, seed=7, duplicates=0).rename(
        columns={"duration": "duration_ms", "popularity": "track_popularity"})
    catalogue["track_id"] = [f"cat{i}" for i in range(len(catalogue))]
    catalogue["track_artist"] = "B"
    tiktok.to_csv(tmp_path / "tiktok.csv", index=False)
    catalogue.to_csv(tmp_path / "catalogue.csv", index=False)
    return tmp_path / "tiktok.csv", tmp_path / "catalogue.csv"


def test_quick_benchmark_writes_every_arm_and_the_mean_arm_is_the_training_mean(tmp_path):
    from benchmarks import pretrain as bench

    tiktok_csv, catalogue_csv = write_files(tmp_path)
    out = tmp_path / "out"
    assert bench.main(["--data", str(tiktok_csv), "--catalogue", str(catalogue_csv), "--quick", "--out", str(out)]) == 0
    result = json.loads((out / "pretrain.json").read_text())
    assert set(result["arms"]) == set(bench.ARMS) == set(result["records"])
    assert set(result["paired"]) == {"pretrained_minus_scratch", "pretrained_minus_forest"}
    assert result["meta"]["tiktok_tracks"] == 120 and result["meta"]["catalogue_tracks"] == 300
    for arm, records in result["records"].items():
        assert [(r["seed"], r["fold"]) for r in records] == [(0, 0), (0, 1)]
        assert all(math.isfinite(r["rmse"]) and r["rmse"] > 0 for r in records), arm
        assert math.isfinite(result["arms"][arm]["rmse"]["mean"])
    # the mean arm scores each test fold with its training fold's mean popularity
    data = load_fit_data(tiktok_csv, catalogue_csv)
    side = data.table[data.y == 1]
    y, groups = side[TARGET].to_numpy(float), side["group"].to_numpy()
    for record, (train, test) in zip(result["records"]["mean"], group_kfold(groups, 2, 0)):
        assert record["train_mean"] == y[train].mean()
        assert math.isclose(record["rmse"], np.sqrt(np.mean((y[test] - y[train].mean()) ** 2)))
    for key, d in result["paired"].items():
        assert math.isclose(d["mean"], np.mean([a["rmse"] - b["rmse"] for a, b in zip(
            result["records"]["pretrained"], result["records"][key.split("_minus_")[1]])]))
    text = (out / "pretrain.md").read_text()
    assert "| pretrained |" in text and "| scratch |" in text and "--quick" in text


def test_continue_training_starts_from_the_given_weights_and_improves_them():
    """Fine-tuning keeps the model's transform and scaling and lowers its validation error."""
    tracks = synthetic_tracks(300, seed=8, duplicates=0)
    X, y = tracks[list(FEATURE_NAMES)].to_numpy(float), tracks["popularity"].to_numpy(float)
    config = TrainConfig(**{**TINY_CONFIG, "max_epochs": 2, "patience": 2})
    model, _ = fit_model(X[:200], y[:200], X[200:], y[200:], config, progress=False)
    before = np.sqrt(np.mean((predict_numpy(model, X[200:]) - y[200:]) ** 2))
    knots = model.transform.knots.clone()
    tuned, history = continue_training(model, X[:200], y[:200], X[200:], y[200:],
                                       TrainConfig(**{**TINY_CONFIG, "max_epochs": 30}))
    assert tuned is model and (tuned.transform.knots == knots).all()
    assert history["best_val_rmse"] < before
    assert math.isclose(np.sqrt(np.mean((predict_numpy(tuned, X[200:]) - y[200:]) ** 2)), history["best_val_rmse"],
                        rel_tol=1e-5)
