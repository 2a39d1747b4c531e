"""benchmarks/fit.py's network candidates and benchmarks/fit_curve.py, on invented files."""

from __future__ import annotations

import json
import math

import numpy as np
import torch

from tests.test_pretrain import write_files
from virality.model.fit import FitConfig
from virality.model.networks import Preprocessing, ViralityModel


def test_nested_subsets_are_nested_keep_each_side_and_never_split_a_song():
    from benchmarks.fit_curve import nested_subsets

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(400), rng.integers(1, 4, 400))
    y = (groups % 5 == 0).astype(int)  # 80 songs on the TikTok side, 320 on the catalogue side
    subsets = nested_subsets(y, groups, (0.25, 0.5, 1.0), seed=3)
    assert set(subsets[1.0]) == set(range(len(y)))
    assert set(subsets[0.25]) < set(subsets[0.5]) < set(subsets[1.0])
    for fraction, rows in subsets.items():
        chosen = set(groups[rows])
        assert all(g in chosen for g in groups[rows]) and not chosen & set(groups[np.setdiff1d(np.arange(len(y)), rows)])
        assert len(np.unique(groups[rows][y[rows] == 1])) == round(fraction * 80)
        assert len(np.unique(groups[rows][y[rows] == 0])) == round(fraction * 320)


def test_a_curve_over_one_side_keeps_the_other_side_whole():
    from benchmarks.fit_curve import nested_subsets

    groups = np.arange(500)
    y = (groups < 100).astype(int)
    for vary, cut, whole in (("tiktok", 1, 0), ("catalogue", 0, 1)):
        subsets = nested_subsets(y, groups, (0.25, 1.0), seed=0, vary=vary)
        rows = subsets[0.25]
        assert (y[rows] == whole).sum() == (y == whole).sum()
        assert (y[rows] == cut).sum() == round(0.25 * (y == cut).sum())


def test_pretraining_learns_popularity_that_the_characteristics_carry():
    """A popularity made of two characteristics is learnt: the held-out MSE of the standardised
    target ends far below 1 (the MSE of predicting its mean)."""
    from benchmarks.fit import pretrain_popularity

    rng = np.random.default_rng(1)
    X = np.c_[rng.uniform(0, 1, (600, 10)), rng.integers(0, 12, 600), rng.integers(0, 2, 600)]
    popularity = 50 + 30 * X[:, 0] - 20 * X[:, 1]
    config = FitConfig(hidden=(16,), n_members=2, max_epochs=60, patience=5, batch_size=64)
    prep = Preprocessing.fit(X, np.zeros(len(X)), 51)
    part = ViralityModel(Preprocessing(prep.knots, prep.levels, 0.0, 1.0), "mlp_ensemble", config.arch_kwargs())
    history = pretrain_popularity(part, X, popularity, np.arange(600), config)
    assert history["best_mse"] < 0.1


def test_quick_fit_benchmark_pairs_every_network_candidate(tmp_path):
    from benchmarks import fit as bench

    tiktok_csv, catalogue_csv = write_files(tmp_path)
    out = tmp_path / "out"
    # logistic regression rather than LightGBM: the tests do not install the benchmarks' packages
    assert bench.main(["--data", str(tiktok_csv), "--catalogue", str(catalogue_csv), "--quick", "--out", str(out),
                       "--only", "logistic_regression", "network", "network_pretrained", "--name", "fit_x"]) == 0
    result = json.loads((out / "fit_x.json").read_text())
    assert set(result["candidates"]) == {"logistic_regression", "network", "network_pretrained"}
    assert set(result["paired"]) == {"network_pretrained_vs_network"}  # no LightGBM, so no pair with it
    for key in ("network_pretrained_vs_network",):
        a, b = key.split("_vs_")
        diffs = [x["auc"] - y["auc"] for x, y in zip(result["records"][a], result["records"][b])]
        assert math.isclose(result["paired"][key]["auc"]["mean"], np.mean(diffs))
    assert all("pretraining" in r["chosen"] for r in result["records"]["network_pretrained"])
    assert "--name fit_x" in result["meta"]["command"]
    assert "network_pretrained − network AUC" in (out / "fit_x.md").read_text()


def test_pretrained_parts_start_from_the_pretrained_weights():
    """``train_fit`` calls ``init`` for every part before training it, and the pretrained init
    gives every part the same pretrained backbone (pretrained once)."""
    from benchmarks.fit import pretrained_init
    from virality.model.fit import train_fit

    rng = np.random.default_rng(2)
    X = np.c_[rng.uniform(0, 1, (300, 10)), rng.integers(0, 12, 300), rng.integers(0, 2, 300)]
    y, groups, popularity = (rng.uniform(size=300) < 0.3).astype(int), np.arange(300), rng.uniform(0, 100, 300)
    config = FitConfig(hidden=(8,), n_members=2, max_epochs=3, patience=1)
    init, history = pretrained_init(X, y, groups, popularity, config)
    seen = []

    def recording_init(part):
        init(part)
        seen.append({k: v.clone() for k, v in part.backbone.state_dict().items()})

    train_fit(X, y, groups, config, init=recording_init)
    assert len(seen) == config.folds and history["epochs_run"] >= 1
    assert all(torch.equal(seen[0][k], s[k]) for s in seen for k in s)


def test_quick_learning_curve_reports_every_share_and_candidate(tmp_path):
    from benchmarks import fit_curve as bench

    tiktok_csv, catalogue_csv = write_files(tmp_path)
    out = tmp_path / "out"
    candidates = ["logistic_regression", "network"]  # the tests do not install LightGBM
    assert bench.main(["--data", str(tiktok_csv), "--catalogue", str(catalogue_csv), "--quick", "--out", str(out),
                       "--only", *candidates]) == 0
    result = json.loads((out / "fit_curve.json").read_text())
    assert {(r["candidate"], r["fraction"]) for r in result["records"]} == {
        (c, f) for c in candidates for f in bench.FRACTIONS}
    assert "--only logistic_regression network" in result["meta"]["command"]
    tracks = [result["table"][f"network@{f}"]["tracks"] for f in bench.FRACTIONS]
    assert tracks == sorted(tracks) and tracks[0] < tracks[-1]
    assert set(result["trend"]) == {f"{c}:{k}" for c in candidates for k in bench.GOALS}
    assert math.isfinite(result["last_doubling"]["network:auc"]["mean"])  # the invented files have no era check
    for key, d in result["last_doubling"].items():
        name, metric = key.split(":")
        full, half = ([r[metric] for r in result["records"] if r["candidate"] == name and r["fraction"] == f]
                      for f in (1.0, 0.5))
        np.testing.assert_allclose(d["mean"], np.mean(np.subtract(full, half)), atol=1e-12, equal_nan=True)
        assert d["n"] == 2
