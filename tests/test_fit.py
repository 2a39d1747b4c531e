"""TikTok fit: a known two-class problem is recovered and calibrated, songs never straddle a split,
attributions add up, what-if edits really raise the fit, the committed model behaves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from tests.cli import run
from virality.data.catalogue import load_fit_data
from virality.explain.explanation import explain_song
from virality.explain.methods import METHODS
from virality.features import BY_NAME, FEATURE_NAMES, default_song
from virality.model.fit import (
    FitConfig,
    auc,
    balanced_weights,
    calibration_bins,
    fit_metrics,
    fit_platt,
    predict_percent,
    stratified_group_folds,
    train_fit,
)
from virality.whatif.search import search

QUICK = FitConfig(folds=3, hidden=(16, 16), n_members=2, max_epochs=40, patience=6, batch_size=256, n_quantiles=51)


def two_sides(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Songs whose side shows only in danceability: TikTok ~ N(0.6, 0.1), catalogue ~ N(0.4, 0.1),
    every other characteristic drawn alike; a third of the rows TikTok. Under equal priors the
    true probability is φ(d; 0.6) / (φ(d; 0.6) + φ(d; 0.4)) and the best AUC Φ(√2) ≈ 0.921."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 1 / 3).astype(int)
    X = np.column_stack([rng.uniform(f.low, f.high, n) if f.kind in ("ratio", "number") else rng.integers(0, 12, n)
                         for f in (BY_NAME[name] for name in FEATURE_NAMES)]).astype(float)
    X[:, FEATURE_NAMES.index("mode")] = rng.integers(0, 2, n)
    X[:, FEATURE_NAMES.index("tempo")] = rng.uniform(60, 200, n)
    X[:, FEATURE_NAMES.index("loudness")] = rng.uniform(-20, -2, n)
    X[:, FEATURE_NAMES.index("duration")] = rng.uniform(120_000, 300_000, n)
    X[:, 0] = np.clip(np.where(y == 1, rng.normal(0.6, 0.1, n), rng.normal(0.4, 0.1, n)), 0, 1)
    return X, y, np.arange(n)


def true_posterior(danceability: np.ndarray) -> np.ndarray:
    tiktok, catalogue = norm.pdf(danceability, 0.6, 0.1), norm.pdf(danceability, 0.4, 0.1)
    return tiktok / (tiktok + catalogue)


@pytest.fixture(scope="module")
def known():
    X, y, groups = two_sides(3000, seed=0)
    fit, oof, _ = train_fit(X, y, groups, QUICK)
    return X, y, fit, oof


def test_a_known_two_class_problem_is_recovered_and_calibrated(known):
    X, y, fit, oof = known
    metrics = fit_metrics(y, oof)
    assert metrics["auc"] == pytest.approx(norm.cdf(np.sqrt(2)), abs=0.025)
    assert metrics["ece"] < 0.05
    fresh, _, _ = two_sides(2000, seed=1)
    shown = predict_percent(fit, fresh) / 100
    assert np.mean(np.abs(shown - true_posterior(fresh[:, 0]))) < 0.06  # the probability itself, not just its order


def test_equal_priors_the_weights_give_each_side_half():
    y = np.array([1] * 10 + [0] * 90)
    w = balanced_weights(y)
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum()) and w.mean() == pytest.approx(1.0)


def test_auc_and_platt_on_hand_made_numbers():
    assert auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert auc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    logit = rng.normal(0, 2, 20_000)
    y = (rng.random(20_000) < 1 / (1 + np.exp(-(0.5 * logit - 1.0)))).astype(int)  # truth: a = 0.5, b = −1
    a, b = fit_platt(logit, y)
    w = balanced_weights(y)  # equal priors shift the intercept by log(n_neg / n_pos)
    assert a == pytest.approx(0.5, abs=0.05) and b == pytest.approx(-1.0 + np.log(w[y == 1][0] / w[y == 0][0]), abs=0.08)


def test_reliability_bins_cover_every_row_once():
    rng = np.random.default_rng(2)
    p, y = rng.random(500), rng.integers(0, 2, 500)
    bins = calibration_bins(y, p)
    assert sum(b["n"] for b in bins) == 500 and sum(b["weight"] for b in bins) == pytest.approx(1.0)


def test_folds_never_split_a_group_and_keep_both_sides():
    rng = np.random.default_rng(3)
    groups = rng.integers(0, 300, 1000)
    y = (groups % 7 == 0).astype(int)  # a group is on one side
    folds = stratified_group_folds(y, groups, 3, seed=0)
    assert sorted(np.concatenate(folds)) == list(range(1000))
    for a in range(3):
        assert y[folds[a]].mean() == pytest.approx(y.mean(), abs=0.05)
        for b in range(a + 1, 3):
            assert not set(groups[folds[a]]) & set(groups[folds[b]])


def test_a_song_in_both_files_is_one_group(tmp_path):
    """A catalogue row with a TikTok track's name and artist (another track_id) joins its group,
    so no split can put the song on both sides of a fold."""
    from tests.conftest import synthetic_tracks

    tiktok = synthetic_tracks(30, seed=4, duplicates=0).assign(artist_name="A", release_date="1/1/2020")
    catalogue = synthetic_tracks(40, seed=5, duplicates=0).rename(columns={
        "duration": "duration_ms", "popularity": "track_popularity"})
    catalogue["track_id"] = [f"cat{i}" for i in range(40)]
    catalogue["track_artist"] = "B"
    catalogue.loc[0, ["track_name", "track_artist"]] = [tiktok.loc[3, "track_name"].upper(), "a"]
    catalogue["track_album_release_date"] = "2015-06-01"
    tiktok.to_csv(tmp_path / "t.csv", index=False)
    catalogue.to_csv(tmp_path / "c.csv", index=False)
    data = load_fit_data(tmp_path / "t.csv", tmp_path / "c.csv")
    table = data.table
    shared = table.loc[table["track_id"].isin([tiktok.loc[3, "track_id"], "cat0"]), "group"]
    assert len(shared) == 2 and shared.nunique() == 1
    assert table["group"].nunique() == 69 and data.y.sum() == 30
    assert not data.era_mask()[table["track_id"].str.startswith("cat").to_numpy()].any()  # 2015 < 2017


# ---------------------------------------------------------------- the committed model


@pytest.mark.parametrize("method", [m for m in METHODS if METHODS[m].tolerance is not None])
def test_fit_attributions_add_up_to_the_fit_difference(bundled, method):
    song = dict(default_song(), danceability=0.9, energy=0.35, tempo=100.0, duration=150_000.0)
    explanation = explain_song(bundled, song, method=method, target="fit")
    gap = explanation.score - explanation.baseline_score
    assert explanation.table["attribution"].sum() == pytest.approx(gap + explanation.delta, abs=1e-4)
    assert abs(explanation.delta) <= METHODS[method].tolerance
    X = np.array([[song[n] for n in FEATURE_NAMES], [bundled.typical_song[n] for n in FEATURE_NAMES]])
    assert [explanation.score, explanation.baseline_score] == pytest.approx(bundled.fit_percent(X), abs=1e-4)


@pytest.mark.parametrize("song", [default_song(), dict(default_song(), energy=0.9, acousticness=0.6),
                                  dict(default_song(), danceability=0.4, tempo=150.0)])
def test_every_fit_suggestion_really_raises_the_fit(bundled, song):
    result = search(bundled, song, gain=5.0, target_kind="fit")
    assert result.suggestions
    X = np.array([[s.song[n] for n in FEATURE_NAMES] for s in result.suggestions])
    fresh = bundled.fit_percent(X)
    assert fresh == pytest.approx([s.score for s in result.suggestions], abs=1e-4)
    for suggestion, value in zip(result.suggestions, fresh):
        assert value > result.original_score and suggestion.reached == (value >= result.target)
        assert np.isnan(suggestion.low) and np.isnan(suggestion.high)  # a probability has no interval


def test_fit_percentile_is_monotone_and_the_typical_song_is_placed(bundled):
    levels = bundled.fit_percentile(np.linspace(0, 100, 101))
    assert (np.diff(levels) >= 0).all() and levels[0] == 0 and levels[-1] == 100
    prediction = bundled.predict_song(default_song())
    assert 0 < prediction.tiktok_fit < 100 and 0 < prediction.fit_percentile < 100


def test_the_bundle_quotes_calibrated_out_of_fold_figures(bundled):
    info = bundled.info.fit
    assert info.overall.ece <= 0.03 and 0.5 < info.era.auc < info.overall.auc
    assert info.data["era_year"] == 2017 and info.data["catalogue"]["tracks"] > info.data["tiktok"]["tracks"]


def test_cli_targets(tmp_path):
    song = json.dumps({"danceability": 0.9, "energy": 0.4})
    explained = run("explain", "--song", song, "--target", "fit", "--json")
    assert explained.code == 0
    body = json.loads(explained.stdout)
    assert set(body) == {"score", "baseline_score", "delta", "method", "attributions"}
    assert sum(v["attribution"] for v in body["attributions"].values()) == pytest.approx(
        body["score"] - body["baseline_score"] + body["delta"], abs=2e-3)
    raised = run("whatif", "--song", song, "--gain", "5", "--target-kind", "fit", "--json")
    assert raised.code == 0 and all(s["low"] is None and s["high"] is None for s in json.loads(raised.stdout)["suggestions"])
    scored = run("score", "examples/demo_tracks.csv", "-o", str(tmp_path / "out.csv"))
    table = pd.read_csv(tmp_path / "out.csv")
    assert scored.code == 0 and list(table.columns).index("tiktok_fit") == list(table.columns).index("percentile") + 1
    assert table["tiktok_fit"].between(0, 100).all()
    assert run("whatif", "--song", song, "--gain", "5", "--target-kind", "virality").code == 2
