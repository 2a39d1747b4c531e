"""Each candidate backbone recovers a known function; the splitter never leaks; the
benchmark runs end to end on a small synthetic sample."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from tests.conftest import synthetic_tracks
from virality.config import TrainConfig
from virality.data.tracks import group_kfold, group_split
from virality.features import FEATURE_NAMES
from virality.model.interval import fit_score_interval, interval_bounds
from virality.model.metrics import coverage_by_decile, regression_metrics
from virality.model.networks import ARCHITECTURES, InputTransform, Preprocessing, ViralityModel, rank_pairs
from virality.model.training import fit_model, predict_numpy

DANCE, ENERGY, LOUD = (FEATURE_NAMES.index(n) for n in ("danceability", "energy", "loudness"))
FAST = {"max_epochs": 150, "patience": 20, "lr": 3e-3, "batch_size": 64, "threads": 1, "weight_decay": 1e-4}
SMALL_KWARGS = {
    "mlp_ensemble": {"hidden": (32, 32), "n_members": 2, "dropout": 0.0},
    "additive": {"hidden": (8, 8), "pair_hidden": (8, 8), "n_members": 1, "dropout": 0.0},
    "tabm": {"d_embed": 4, "hidden": (32, 32), "n_members": 2, "dropout": 0.0},
}
SMALL_KWARGS["blend"] = {"parts": [{"arch": "mlp_ensemble", "arch_kwargs": SMALL_KWARGS["mlp_ensemble"]},
                                   {"arch": "tabm", "arch_kwargs": SMALL_KWARGS["tabm"]}]}


def truth(X: np.ndarray) -> np.ndarray:
    """Additive in danceability and loudness, plus a danceability × energy interaction."""
    return 30 + 40 * X[:, DANCE] + 1.0 * X[:, LOUD] + 40 * (X[:, DANCE] - 0.5) * (X[:, ENERGY] - 0.5)


def synthetic_xy(n_tracks: int, seed: int, noise: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tracks = synthetic_tracks(n_tracks, seed=seed, duplicates=0)
    X = tracks[list(FEATURE_NAMES)].to_numpy(np.float64)
    clean = truth(X)
    return X, clean + np.random.default_rng(seed).normal(0, noise, len(X)), clean


@pytest.fixture(scope="module")
def data():
    return synthetic_xy(900, seed=1), synthetic_xy(300, seed=2, noise=0.0)


def fit_arch(arch: str, data, **extra) -> ViralityModel:
    (X, y, _), _ = data
    fit, val = group_split(np.arange(len(X)), (0.8, 0.2), 0)
    config = TrainConfig(arch=arch, arch_kwargs=SMALL_KWARGS[arch], **FAST, **extra)
    model, _ = fit_model(X[fit], y[fit], X[val], y[val], config, progress=False)
    return model


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_each_candidate_recovers_an_additive_function_with_an_interaction(arch, data):
    model = fit_arch(arch, data, **({"n_pairs": 1} if arch == "additive" else {}))
    _, (X_test, _, clean) = data
    metrics = regression_metrics(clean, predict_numpy(model, X_test))
    assert metrics["r2"] > 0.9, metrics


def test_the_pair_screen_finds_the_true_interaction(data):
    (X, y, _), _ = data
    prep = Preprocessing.fit(X, y)
    with torch.inference_mode():
        z = InputTransform(prep)(torch.as_tensor(X, dtype=torch.float32)).numpy()
    additive_part = 30 + 40 * X[:, DANCE] + 1.0 * X[:, LOUD]
    assert rank_pairs(z, y - additive_part, 1) == [[DANCE, ENERGY]]


def test_additive_terms_sum_to_the_output_and_shapes_follow_the_truth(data):
    model = fit_arch("additive", data, n_pairs=1)
    assert model.arch_kwargs["pairs"] == [[DANCE, ENERGY]]
    _, (X_test, _, _) = data
    with torch.inference_mode():
        z = model.transform(torch.as_tensor(X_test, dtype=torch.float32))
        terms = model.backbone.terms(z)
        assert terms.shape == (len(X_test), len(FEATURE_NAMES) + 1)
        torch.testing.assert_close(terms.sum(1) + model.backbone.bias, model.backbone(z), atol=1e-4, rtol=1e-4)
    points = terms.numpy() * float(model.target_std)
    # danceability's learned shape rises with danceability; key's (no effect) stays nearly flat
    dance_slope = np.polyfit(X_test[:, DANCE], points[:, DANCE], 1)[0]
    assert dance_slope > 20
    assert np.std(points[:, FEATURE_NAMES.index("key")]) < 0.2 * np.std(points[:, DANCE])


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_gradients_reach_the_raw_characteristics(arch):
    X, y, _ = synthetic_xy(50, seed=3)
    kwargs = dict(SMALL_KWARGS[arch], **({"pairs": [[DANCE, ENERGY]]} if arch == "additive" else {}))
    model = ViralityModel(Preprocessing.fit(X, y), arch, kwargs)
    assert model.backbone.member_outputs(model.transform(torch.tensor(X[:4], dtype=torch.float32))).shape[1] == 4
    raw = torch.tensor(X[:4], dtype=torch.float32, requires_grad=True)
    model(raw).sum().backward()
    assert raw.grad.shape == (4, 12) and torch.all(torch.isfinite(raw.grad))
    assert torch.any(raw.grad[:, DANCE] != 0)


def test_grouped_splitters_never_put_a_track_on_both_sides():
    ids = np.repeat(np.arange(200), np.random.default_rng(0).integers(1, 4, 200)).astype(str)
    for seed in range(3):
        for train, test in group_kfold(ids, 5, seed):
            assert not set(ids[train]) & set(ids[test])
            fit, val = group_split(ids[train], (0.85, 0.15), seed)
            assert not set(ids[train][fit]) & set(ids[train][val])
            assert len(fit) + len(val) == len(train)


def test_score_interval_covers_about_80_percent_in_every_decile():
    rng = np.random.default_rng(0)
    score = rng.uniform(20, 80, 6000)
    y = score + rng.normal(0, 2 + 0.2 * score)  # the spread grows with the score
    interval = fit_score_interval(score[:1500], y[:1500], 0.8)
    low, high = interval_bounds(interval, score[3000:])
    assert np.all(low <= score[3000:]) and np.all(score[3000:] <= high)
    by_decile = coverage_by_decile(score[3000:], y[3000:], low, high)
    assert max(abs(c - 0.8) for c in by_decile) < 0.06, by_decile
    # a fixed half-width would not: the interval must widen as the spread grows
    (low_20, low_80), (high_20, high_80) = interval_bounds(interval, np.array([20.0, 80.0]))
    assert high_80 - low_80 > 1.5 * (high_20 - low_20)


def test_model_benchmark_runs_end_to_end_quickly(tmp_path):
    from benchmarks import models as bench

    csv = tmp_path / "tracks.csv"
    synthetic_tracks(160, seed=4, duplicates=20).to_csv(csv, index=False)
    assert bench.main(["--data", str(csv), "--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "models.json").read_text())
    assert set(result["candidates"]) == {*bench.BASELINES, *ARCHITECTURES}
    assert {"mean", "ridge", "random_forest"} <= set(bench.BASELINES)  # lightgbm when installed (bench extra)
    for entry in result["candidates"].values():
        assert {"r2", "rmse", "mae", "spearman"} <= set(entry)
        assert sum(map(sum, entry["heldout_histogram"]["counts"])) == 160  # every track scored once
    assert result["meta"]["best_network"] in ARCHITECTURES
    assert "| mean |" in (tmp_path / "models.md").read_text()


def test_tuning_never_sees_the_test_fold(monkeypatch):
    """Every fit inside the benchmark receives only training-fold tracks."""
    from benchmarks import models as bench

    tracks = synthetic_tracks(120, seed=5, duplicates=0)
    X = tracks[list(FEATURE_NAMES)].to_numpy(np.float64)
    y = tracks["popularity"].to_numpy(np.float64)
    ids = tracks["track_id"].to_numpy()
    seen = []
    real_fit = bench.fit_model

    def spy(X_fit, y_fit, X_val, y_val, config, progress=False):
        seen.append(np.concatenate([X_fit, X_val]))
        return real_fit(X_fit, y_fit, X_val, y_val, dataclasses.replace(config, max_epochs=2), progress)

    monkeypatch.setattr(bench, "fit_model", spy)
    bench.evaluate(X, y, ids, [0], 3, True, ["mlp_ensemble"])
    for (_, test), used in zip(group_kfold(ids, 3, 0), seen[::len(bench.NEURAL_GRIDS["mlp_ensemble"])]):
        test_rows = {tuple(r) for r in X[test]}
        assert not test_rows & {tuple(r) for r in used}


def test_presets_and_the_shipped_default_are_known_architectures():
    from virality.config import PRESETS, preset

    assert TrainConfig().arch in ARCHITECTURES and set(PRESETS) <= set(ARCHITECTURES)
    assert preset("tabm", seed=3).arch == "tabm" and preset("tabm", seed=3).seed == 3
    with pytest.raises(ValueError, match="unknown architecture"):
        preset("transformer")


def test_bundles_with_a_fixed_half_width_still_give_symmetric_intervals():
    low, high = interval_bounds({"half_width": 10.0}, np.array([5.0, 50.0, 95.0]))
    assert list(low) == [0.0, 40.0, 85.0] and list(high) == [15.0, 60.0, 100.0]
