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
    assert Predictor(model, metadata).predict_array(X).shape == (16, 5)  # score, low, high, percentile, tiktok_fit


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


def test_interval_is_calibrated_on_out_of_fold_scores(tiny_bundle):
    _, metadata = tiny_bundle
    interval = metadata["interval"]
    assert interval["level"] == 0.8 and interval["half_width"] > 0
    assert 0.6 <= interval["fitted_coverage"] <= 1.0


def test_the_shipped_model_trains_on_every_track_for_the_folds_median_epochs(synthetic_csv, monkeypatch, tmp_path):
    """Five fold models early-stop on their hold-outs and score their folds; the sixth fit, the
    shipped one, sees every track and no validation, for median(best epoch) + 1 epochs."""
    from virality.data.tracks import load_tracks
    from virality.model import training

    fits, real_fit = [], training.fit_model

    def spy(X_fit, y_fit, X_stop, y_stop, config, progress=False):
        model, history = real_fit(X_fit, y_fit, X_stop, y_stop, config, progress)
        fits.append((len(X_fit), X_stop is None, config.max_epochs, history["best_epoch"]))
        return model, history

    monkeypatch.setattr(training, "fit_model", spy)
    metadata = train(synthetic_csv, tmp_path, TrainConfig(**TINY_CONFIG), progress=False)
    *folds, final = fits
    assert len(folds) == TrainConfig().calibration_folds and not any(no_stop for _, no_stop, _, _ in folds)
    assert final[0] == len(load_tracks(synthetic_csv).tracks) == metadata["data"]["train_tracks"] and final[1]
    assert final[2] == int(np.median([best for *_, best in folds])) + 1 == metadata["history"]["final_epochs"]


def test_no_song_is_split_across_folds_even_under_another_track_id(tmp_path):
    """The same song (name + artist) released under two track_ids lands in one group, so a fold
    model never trains on the song it scores."""
    from tests.conftest import synthetic_tracks
    from virality.data.tracks import group_kfold, load_tracks

    frame = synthetic_tracks(120, seed=3, duplicates=0)
    frame["artist_name"] = "Artist " + (frame.index % 40).astype(str)
    frame.loc[60:, "track_name"] = frame.loc[:59, "track_name"].to_numpy()  # songs 60–119 re-release 0–59
    frame.loc[60:, "artist_name"] = frame.loc[:59, "artist_name"].to_numpy()
    frame.to_csv(tmp_path / "songs.csv", index=False)
    tracks = load_tracks(tmp_path / "songs.csv").tracks
    assert tracks["track_id"].nunique() == 120 and tracks["group"].nunique() == 60
    for train_rows, test_rows in group_kfold(tracks["group"].to_numpy(), 5, seed=0):
        names = lambda rows: set(tracks.iloc[rows]["track_id"].map(dict(zip(frame.track_id, frame.track_name))))  # noqa: E731
        assert not names(train_rows) & names(test_rows)
