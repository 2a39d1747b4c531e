import json

import numpy as np
import pytest
import torch

from tests.conftest import TINY_CONFIG
from virality.config import TrainConfig
from virality.features import FEATURE_NAMES
from virality.model.bundle import META_FILE, PREP_FILE, SCHEMA_VERSION, BundleError, load_bundle
from virality.model.prediction import Predictor
from virality.model.training import train


def test_training_writes_a_complete_bundle(tiny_bundle):
    out, metadata = tiny_bundle
    assert {"model.pt", PREP_FILE, META_FILE} <= {p.name for p in out.iterdir()}
    saved = json.loads((out / META_FILE).read_text())
    assert saved["schema_version"] == SCHEMA_VERSION
    assert [f["name"] for f in saved["features"]] == list(FEATURE_NAMES)
    assert set(saved["metrics"]) == {"model", "mean_predictor", "ridge"}
    for values in saved["metrics"].values():
        assert set(values) == {"r2", "rmse", "mae", "spearman"}
    assert len(saved["data"]["sha256"]) == 64 and saved["seed"] == 0
    assert saved["config"]["arch"] == "mlp_ensemble"
    assert {"torch", "numpy", "pandas"} <= set(saved["versions"])
    assert len(saved["scores"]["predicted_quantiles"]) == 101
    # no rows of the data in the bundle: only a summary
    assert "tracks" not in saved["distribution"]


def test_the_model_learns_the_synthetic_signal(tiny_bundle):
    _, metadata = tiny_bundle
    model, mean, ridge = (metadata["metrics"][k] for k in ("model", "mean_predictor", "ridge"))
    assert model["r2"] > 0.5 and model["rmse"] < mean["rmse"]
    assert model["spearman"] > 0.7


def test_same_data_and_seed_give_the_same_metrics(tiny_bundle, synthetic_csv, tmp_path):
    _, first = tiny_bundle
    again = train(synthetic_csv, tmp_path, TrainConfig(**TINY_CONFIG), progress=False)
    for name in first["metrics"]:
        for key, value in first["metrics"][name].items():
            assert again["metrics"][name][key] == pytest.approx(value, abs=5e-4), (name, key)


def test_bundle_round_trip_predicts_identically(tiny_bundle):
    out, _ = tiny_bundle
    model, metadata = load_bundle(out)
    again, _ = load_bundle(out)
    X = np.random.default_rng(0).uniform(0, 1, (16, 12)) * [1, 1, 11, -20, 1, 1, 1, 1, 1, 1, 200, 300_000]
    with torch.inference_mode():
        a = model(torch.tensor(X, dtype=torch.float32))
        b = again(torch.tensor(X, dtype=torch.float32))
    assert torch.equal(a, b)
    assert Predictor(model, metadata).predict_array(X).shape == (16, 4)


def test_tampered_preprocessing_is_refused(tiny_bundle, tmp_path):
    out, _ = tiny_bundle
    for item in out.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    with (tmp_path / PREP_FILE).open("ab") as handle:
        handle.write(b"\x00")
    with pytest.raises(BundleError, match="does not match the SHA-256"):
        load_bundle(tmp_path)


def test_missing_bundle_says_how_to_train(tmp_path):
    with pytest.raises(BundleError, match="python -m virality train"):
        load_bundle(tmp_path)


def test_interval_is_calibrated_on_held_out_tracks(tiny_bundle):
    _, metadata = tiny_bundle
    interval = metadata["interval"]
    assert interval["level"] == 0.8 and interval["half_width"] > 0
    assert 0.6 <= interval["test_coverage"] <= 1.0
