"""The 80 % interval: cross-fitted calibration, its shape selection, and old bundles' formats."""

import dataclasses

import numpy as np
import pytest
from scipy.stats import norm

from tests.conftest import TINY_CONFIG, synthetic_tracks
from virality.config import TrainConfig
from virality.data.tracks import group_kfold
from virality.features import FEATURE_NAMES
from virality.model import training as train_module
from virality.model.interval import (
    INTERVAL_FORMS,
    _design,
    _quantile_fit,
    fit_score_interval,
    interval_bounds,
    make_basis,
)
from virality.model.metrics import coverage_by_decile


def spread(score: np.ndarray) -> np.ndarray:
    """Noise sd (points) that is not a low-order polynomial of the score: narrow at both
    ends, widest a little above the middle, with a kink."""
    return 4 + 14 * np.clip(1 - np.abs(score - 55) / 30, 0, None)


def heteroscedastic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(score, popularity) where popularity ~ Normal(score, spread(score)), unclipped, so the
    true 10 % and 90 % conditional quantiles are score ∓ 1.2816·spread(score)."""
    rng = np.random.default_rng(seed)
    score = rng.uniform(20, 90, n)
    return score, score + rng.normal(0, spread(score))


def test_cross_fitted_shape_recovers_known_conditional_quantiles_per_decile():
    score, y = heteroscedastic(3000, seed=0)
    interval = fit_score_interval(score, y, 0.8)
    fresh_score, fresh_y = heteroscedastic(20000, seed=1)
    low, high = interval_bounds(interval, fresh_score)
    by_decile = coverage_by_decile(fresh_score, fresh_y, low, high)
    assert max(abs(c - 0.8) for c in by_decile) < 0.04, by_decile
    # the ends follow the true quantiles, not just the overall count
    grid = np.linspace(30, 80, 11)
    z = norm.ppf(0.9)
    true_low, true_high = grid - z * spread(grid), grid + z * spread(grid)
    got_low, got_high = interval_bounds(interval, grid)
    assert np.max(np.abs(got_low - true_low)) < 4 and np.max(np.abs(got_high - true_high)) < 4
    assert interval["selection"]["form"] in INTERVAL_FORMS
    # a straight line cannot follow a kinked spread: the selection must not pick one
    assert interval["selection"]["form"] != "poly1"


def test_selection_is_seeded_and_json_ready():
    import json

    score, y = heteroscedastic(800, seed=2)
    first, again = fit_score_interval(score, y, 0.8, seed=3), fit_score_interval(score, y, 0.8, seed=3)
    assert json.loads(json.dumps(first)) == first == again


def test_dual_quantile_regression_reaches_scikit_learns_optimum():
    from sklearn.linear_model import QuantileRegressor

    score, y = heteroscedastic(400, seed=4)
    for form in ("poly2", "hinge3"):
        basis = make_basis(form, score)
        design = _design(basis, score)
        ours = design @ np.asarray(_quantile_fit(basis, score, y, 0.1))
        theirs = QuantileRegressor(quantile=0.1, alpha=0.0, solver="highs", fit_intercept=False).fit(design, y)

        def loss(fitted):
            diff = y - fitted
            return np.mean(np.maximum(0.1 * diff, -0.9 * diff))

        assert loss(ours) == pytest.approx(loss(theirs.predict(design)), rel=1e-6)


def test_beyond_the_calibrated_scores_an_end_keeps_its_edge_distance():
    score, y = heteroscedastic(1000, seed=5)
    interval = fit_score_interval(score, y, 0.8)
    lo_edge, hi_edge = interval["score_range"]
    (low_at, low_past), (high_at, high_past) = interval_bounds(interval, np.array([hi_edge, hi_edge + 5]))
    if high_past < 100:
        assert high_past - (hi_edge + 5) == pytest.approx(high_at - hi_edge)
    assert low_past - (hi_edge + 5) == pytest.approx(low_at - hi_edge)
    low, high = interval_bounds(interval, np.array([0.0, 100.0]))
    assert np.all(low <= [0.0, 100.0]) and np.all(high >= [0.0, 100.0]) and np.all((0 <= low) & (high <= 100))


def test_old_bundles_interval_formats_still_read_the_same():
    score = np.array([10.0, 40.0, 70.0])
    s = score / 100
    quadratic = {"method": "score_polynomial_quantile_regression", "level": 0.8, "degree": 2,
                 "lower": [7.6, -74.7, 145.1], "upper": [70.8, -34.3, 92.2], "half_width": 34.9}
    low, high = interval_bounds(quadratic, score)
    expected_low = 7.6 - 74.7 * s + 145.1 * s**2
    expected_high = 70.8 - 34.3 * s + 92.2 * s**2
    assert low == pytest.approx(np.clip(np.minimum(expected_low, score), 0, 100))
    assert high == pytest.approx(np.clip(np.maximum(expected_high, score), 0, 100))
    # no score_range in an old bundle: far scores are not clamped
    far_low, _ = interval_bounds(quadratic, np.array([95.0]))
    assert far_low[0] == pytest.approx(7.6 - 74.7 * 0.95 + 145.1 * 0.95**2)
    low, high = interval_bounds({"half_width": 10.0}, score)
    assert list(low) == [0.0, 30.0, 60.0] and list(high) == [20.0, 50.0, 80.0]


def test_cross_fitted_scores_never_score_a_track_with_a_model_that_saw_it(monkeypatch):
    tracks = synthetic_tracks(150, seed=6, duplicates=0)
    X = tracks[list(FEATURE_NAMES)].to_numpy(np.float64)
    y = tracks["popularity"].to_numpy(np.float64)
    ids = tracks["track_id"].to_numpy()
    config = TrainConfig(**{**TINY_CONFIG, "max_epochs": 3, "calibration_folds": 3})
    used = []
    real_fit = train_module.fit_model

    def spy(X_fit, y_fit, X_stop, y_stop, cfg, progress=False):
        used.append({tuple(r) for r in np.concatenate([X_fit, X_stop])})
        return real_fit(X_fit, y_fit, X_stop, y_stop, cfg, progress)

    monkeypatch.setattr(train_module, "fit_model", spy)
    scores = train_module.cross_fitted_scores(X, y, ids, config)
    assert np.all(np.isfinite(scores)) and np.all((0 <= scores) & (scores <= 100))
    assert len(used) == 3
    for seen, (_, scored) in zip(used, group_kfold(ids, 3, config.seed)):
        assert not seen & {tuple(r) for r in X[scored]}


def test_training_records_how_the_interval_was_calibrated(tiny_bundle):
    _, metadata = tiny_bundle
    interval, data = metadata["interval"], metadata["data"]
    assert interval["method"] == "crossfit_quantile_regression" and "cross-fitted" in interval["calibration"]
    assert interval["calibration_tracks"] == data["tracks"] == data["train_tracks"]
    assert interval["calibration_songs"] == data["songs"]
    assert len(interval["fitted_coverage_by_decile"]) == 10 and 0 < interval["fitted_mean_width"] <= 100
    assert interval["selection"]["form"] in metadata["config"]["interval_forms"]
    assert metadata["config"]["calibration_folds"] == TrainConfig().calibration_folds


def test_config_round_trips_through_metadata():
    config = dataclasses.replace(TrainConfig(), calibration_folds=4, interval_forms=("poly2", "hinge3"))
    again = TrainConfig.from_dict(config.to_dict())
    assert again == config and isinstance(again.interval_forms, tuple)



def test_coverage_noise_simulates_a_perfect_interval():
    """The noise floor quoted beside the per-decile coverage: an exactly-80 % interval
    averages 80 % per decile, strays more with few tracks than with many, and a decile at
    the nominal level has p = 1."""
    from benchmarks import coverage_noise

    rng = np.random.default_rng(0)
    few, many = (coverage_noise.perfect_interval_deciles(n, rng) for n in (50, 20_000))
    assert abs(few.mean() - 0.8) < 0.002 and abs(many.mean() - 0.8) < 0.002
    assert few.std() > 5 * many.std()
    within = lambda sims: np.mean(np.all(np.abs(sims - 0.8) <= 0.03, axis=1))  # noqa: E731
    assert within(many) > 0.99 > 0.5 > within(few)
    assert coverage_noise.two_sided_p(0.8, 284, rng) == 1.0
    assert coverage_noise.two_sided_p(0.6, 284, rng) < 0.001
