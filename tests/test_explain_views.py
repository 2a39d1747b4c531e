import numpy as np
import pytest
from scipy.stats import spearmanr

from tests.test_explain import KnownModel, KnownPredictor, LinearPlusProduct, ScaledCopies, random_songs
from virality.data.demo import demo_song, demo_tracks
from virality.explain.plots import global_figure, interaction_heatmap, pair_figure, sensitivity_figure, waterfall_figure
from virality.explain.views import (
    CONTINUOUS,
    friedman_h,
    global_importance,
    interaction_sentence,
    pair_grid,
    pairwise_interactions,
    sample_typical_tracks,
    sensitivity_curves,
    top_pairs,
)
from virality.features import BY_NAME, FEATURE_NAMES


def test_sensitivity_curves_pass_through_the_song_and_cover_the_range(bundled):
    song = demo_song("Demo — Bedroom Ballad")
    curves = sensitivity_curves(bundled, song)
    score = bundled.predict_song(song).score
    assert set(curves["feature"]) == set(FEATURE_NAMES)
    current = curves[curves["current"]].drop_duplicates("feature")
    assert len(current) == 12 and np.allclose(current["score"], score, atol=1e-4)
    assert (curves["low"] <= curves["score"]).all() and (curves["score"] <= curves["high"]).all()
    tempo = curves[curves["feature"] == "tempo"]["value"]
    assert tempo.min() == BY_NAME["tempo"].low and tempo.max() == BY_NAME["tempo"].high
    assert len(curves[curves["feature"] == "key"]) == 12 and len(curves[curves["feature"] == "mode"]) == 2


def test_typical_sample_follows_the_shipped_summary(bundled):
    dist = bundled.info.distribution
    sample = sample_typical_tracks(dist, 4000, seed=0)
    assert sample.equals(sample_typical_tracks(dist, 4000, seed=0))
    quantiles = dist.quantiles
    assert ((sample.to_numpy() >= quantiles[0] - 1e-9) & (sample.to_numpy() <= quantiles[-1] + 1e-9)).all()
    medians = sample.median().to_numpy()
    for j in CONTINUOUS:
        assert quantiles[40, j] <= medians[j] <= quantiles[60, j], FEATURE_NAMES[j]
    # rank correlation of the two most correlated continuous characteristics is kept
    corr = dist.normal_correlation
    a, b = np.unravel_index(np.argmax(np.abs(corr - np.eye(len(corr)))), corr.shape)
    rho = spearmanr(sample.iloc[:, CONTINUOUS[a]], sample.iloc[:, CONTINUOUS[b]]).statistic
    assert abs(rho - corr[a, b]) < 0.1
    assert set(np.unique(sample["mode"])) <= {0.0, 1.0} and set(np.unique(sample["key"])) <= set(range(12))


def test_global_importance_is_mean_absolute_attribution(bundled):
    sample = sample_typical_tracks(bundled.info.distribution, 30)
    result = global_importance(bundled, demo_tracks(), sample, method="deeplift")
    assert sorted(result["feature"]) == sorted(FEATURE_NAMES)
    assert (result.drop(columns=["feature", "label"]) >= 0).all().all()
    assert result["typical tracks (sample)"].is_monotonic_decreasing


@pytest.fixture
def product_model(typical_song):
    """g(z) = w·z + 0.5 · z_danceability · z_energy on scaled copies: one known interaction."""
    rng = np.random.default_rng(9)
    scale = 1 / np.array([max(abs(BY_NAME[FEATURE_NAMES[g]].high), 1.0) for g in ScaledCopies.output_groups])
    w = rng.normal(size=len(scale))
    model = KnownModel(ScaledCopies(scale), LinearPlusProduct(w, c=0.5, pair=(0, 1)), std=10.0, mean=50.0)
    return KnownPredictor(model, typical_song), scale


def test_pairwise_interactions_find_the_one_known_product(product_model):
    predictor, scale = product_model
    song = dict(predictor.typical_song, danceability=0.95, energy=0.2, tempo=90.0)
    matrix = pairwise_interactions(predictor, song)
    expected = 10.0 * 0.5 * scale[0] * scale[1] * (0.95 - predictor.typical_song["danceability"]) \
        * (0.2 - predictor.typical_song["energy"])
    assert matrix.loc["danceability", "energy"] == pytest.approx(expected, abs=1e-3)
    others = matrix.to_numpy().copy()
    others[0, 1] = others[1, 0] = 0
    assert np.abs(others).max() < 1e-3
    assert top_pairs(matrix, 1)[0][:2] == ("danceability", "energy")
    assert "danceability with energy" in interaction_sentence(matrix)


def test_friedman_h_is_zero_only_without_interaction(product_model, bundled):
    predictor, _ = product_model
    sample = sample_typical_tracks(bundled.info.distribution, 25, seed=3)
    h = friedman_h(predictor, sample)
    assert h.loc["danceability", "energy"] > 0.01
    others = h.to_numpy().copy()
    others[0, 1] = others[1, 0] = 0
    assert np.abs(others).max() < 1e-3 and np.allclose(h, h.T)


def test_pair_grid_spans_both_characteristics_and_marks_nothing_invalid(bundled):
    song = demo_song("Demo — Viral Chant")
    grid = pair_grid(bundled, song, "danceability", "key", n_points=9)
    assert len(grid) == 9 * 12 and grid["second"].nunique() == 12
    assert grid["first"].min() <= song["danceability"] <= grid["first"].max()
    assert grid["score"].between(0, 100).all()
    with pytest.raises(ValueError, match="two different"):
        pair_grid(bundled, song, "tempo", "tempo")


def test_figures_draw_from_computed_results(bundled):
    from virality.explain.explanation import explain_song

    song = demo_song("Demo — Verse Heavy")
    result = explain_song(bundled, song, method="shapley")
    waterfall = waterfall_figure(result)
    labels = list(waterfall.data[0].y)
    assert len(labels) == 14 and any("Tempo" in t and "BPM" in t for t in labels)
    assert len(sensitivity_figure(sensitivity_curves(bundled, song)).data) == 48
    assert len(global_figure(global_importance(bundled, demo_tracks(), random_songs_frame(10))).data) == 2
    assert interaction_heatmap(pairwise_interactions(bundled, song), "x").data[0].z.shape == (12, 12)
    assert len(pair_figure(pair_grid(bundled, song, "tempo", "duration"), "tempo", "duration", song).data) == 2


def random_songs_frame(n):
    import pandas as pd

    return pd.DataFrame(random_songs(n, seed=11), columns=list(FEATURE_NAMES))


def test_every_view_of_the_fit_is_of_the_fit_model(bundled):
    """For ``target="fit"`` the sweeps pass through the song's fit, the pair grid is the fit, the
    per-song interactions are exact second differences of the fit, importance is in its units."""
    song = demo_song("Demo — Bedroom Ballad")
    x = np.array([[song[n] for n in FEATURE_NAMES]])
    fit = bundled.fit_percent(x)[0]
    curves = sensitivity_curves(bundled, song, target="fit")
    current = curves[curves["current"]].drop_duplicates("feature")
    assert len(current) == 12 and np.allclose(current["score"], fit, atol=1e-4)
    assert curves["low"].isna().all() and curves["high"].isna().all()
    assert not np.allclose(curves["score"], sensitivity_curves(bundled, song)["score"])
    grid = pair_grid(bundled, song, "energy", "tempo", n_points=5, target="fit")
    rows = np.repeat(x, len(grid), axis=0)
    rows[:, FEATURE_NAMES.index("energy")], rows[:, FEATURE_NAMES.index("tempo")] = grid["first"], grid["second"]
    np.testing.assert_allclose(grid["score"], bundled.fit_percent(rows), atol=1e-6)
    typical = bundled.typical_song
    matrix = pairwise_interactions(bundled, song, typical, target="fit")
    j, k = FEATURE_NAMES.index("danceability"), FEATURE_NAMES.index("acousticness")
    x0 = np.array([typical[n] for n in FEATURE_NAMES])
    moved = [np.where(np.isin(np.arange(12), cols), x0, x[0]) for cols in ([], [j], [k], [j, k])]
    f = bundled.fit_percent(np.array(moved))
    assert matrix.iloc[j, k] == pytest.approx(f[0] - f[1] - f[2] + f[3], abs=1e-4)  # float32 passes of other sizes
    demo = demo_tracks()
    by_target = {target: global_importance(bundled, demo.head(3), demo.tail(3), "ig", target=target)
                 .set_index("feature").loc[list(FEATURE_NAMES), "demo tracks"] for target in ("fit", "popularity")}
    assert (by_target["fit"] >= 0).all() and not np.allclose(by_target["fit"], by_target["popularity"])
