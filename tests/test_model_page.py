"""The Model page renders from committed results only (no data set), and degrades gracefully."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import open_app
from virality.features import FEATURE_NAMES
from virality.model import additive
from virality.model import report as model_report

PAGE = "pages/model.py"


@pytest.fixture(scope="module")
def page() -> AppTest:
    return open_app(PAGE)


def test_page_shows_the_benchmark_table_with_every_candidate(page):
    results = model_report.load_results()
    shown = next(d.value for d in page.dataframe if "80 % coverage" in d.value.columns)  # a read-only table has no key
    assert set(shown["model"]) == set(results["candidates"])
    assert list(shown["RMSE"]) == sorted(shown["RMSE"])  # best first
    coverage = dict(zip(shown["model"], shown["80 % coverage"]))
    for name, entry in results["candidates"].items():
        expected = f"{entry['coverage']['mean']:.1%}" if "coverage" in entry else "—"
        assert coverage[name] == expected


def test_interval_caption_gives_the_noise_floor_of_per_decile_coverage(page):
    noise = model_report.load_coverage_noise()
    captions = " ".join(c.value for c in page.caption)
    assert f"puts {noise['expected_deciles_outside']:.1f} deciles outside" in captions
    assert model_report.load_coverage_noise("/nonexistent/coverage_noise.json") is None


def test_page_draws_a_shape_and_a_sentence_per_characteristic(page):
    captions = " ".join(c.value for c in page.caption)
    from virality.features import BY_NAME

    for name in FEATURE_NAMES:
        assert f"{BY_NAME[name].label}:" in captions
    predictor = additive.load_additive()
    for a, b in additive.pairs(predictor):
        assert f"{BY_NAME[a].label} × {BY_NAME[b].label}:" in captions


def test_page_without_benchmark_results_says_how_to_make_them(monkeypatch, tmp_path):
    monkeypatch.setattr(model_report, "RESULTS_FILE", tmp_path / "missing.json")
    at = open_app(PAGE)
    assert any("python -m benchmarks.models" in w.value for w in at.warning)


def test_shapes_are_exactly_how_the_additive_score_moves():
    """For a characteristic in no pair, moving it on the typical song moves the additive
    network's score by exactly the difference of its drawn shape."""
    import numpy as np

    predictor = additive.load_additive()
    shapes = additive.shape_functions(predictor)
    in_pairs = {n for pair in additive.pairs(predictor) for n in pair}
    checked = 0
    for name in (n for n in FEATURE_NAMES if n not in in_pairs):
        rows = shapes[shapes["characteristic"] == name]
        assert rows["value"].is_monotonic_increasing
        first, last = rows.iloc[0], rows.iloc[-1]
        songs = [dict(predictor.typical_song, **{name: v}) for v in (first["value"], last["value"])]
        X = np.array([[s[n] for n in FEATURE_NAMES] for s in songs])
        moved = np.diff(predictor.raw_scores(X))[0]
        assert moved == pytest.approx(last["points"] - first["points"], abs=1e-3)
        checked += 1
    assert checked >= 4


def edge_phrasing_problems(sentence: str, values, feature) -> list[str]:
    """What reads oddly in a shape sentence: "below" the lowest real value or "above" the
    highest (it describes no song), a signed zero, or two groups described by the same value."""
    import re

    problems = []
    lowest, highest = feature.format(min(values)), feature.format(max(values))
    if f"below {lowest}" in sentence:
        problems.append(f"below the lowest value {lowest}")
    if f"above {highest}" in sentence:
        problems.append(f"above the highest value {highest}")
    if re.search(r"[+-]0\.0\b", sentence):
        problems.append("signed zero")
    groups = re.findall(r"songs (?:below|above|at|around|in) (.+?) (?:score|about|-|\+)", sentence)
    if len(groups) != len(set(groups)):
        problems.append(f"two groups with the same value: {groups}")
    return problems


def test_every_sentence_for_the_bundled_additive_model_reads_sensibly():
    from virality.features import BY_NAME

    predictor = additive.load_additive()
    shapes = additive.shape_functions(predictor)
    for name in FEATURE_NAMES:
        sentence = additive.describe_shape(shapes, name)
        values = shapes.loc[shapes["characteristic"] == name, "value"]
        assert sentence.startswith(f"{BY_NAME[name].label}: "), sentence
        assert not edge_phrasing_problems(sentence, values, BY_NAME[name]), sentence
    for pair in additive.pairs(predictor):
        sentence = additive.describe_surface(additive.interaction_surface(predictor, pair), pair)
        assert "high length" not in sentence and "low length" not in sentence, sentence
        assert not edge_phrasing_problems(sentence, [0], BY_NAME[pair[0]]), sentence


@pytest.mark.parametrize("name", FEATURE_NAMES)
def test_shape_sentences_at_range_edges_for_every_characteristic(name):
    """Synthetic shapes where most real tracks sit on the lowest or the highest value (as
    most tracks have instrumentalness 0): the sentence says "at", never "below"/"above" it."""
    import numpy as np
    import pandas as pd

    from virality.features import BY_NAME

    feature = BY_NAME[name]
    if feature.is_discrete:
        values = np.arange(12.0) if name == "key" else np.array([0.0, 1.0])
        percentiles = np.full(len(values), np.nan)
    else:
        low, high = {"loudness": (-20.0, -2.0), "tempo": (60.0, 200.0), "duration": (90_000.0, 300_000.0)}.get(
            name, (0.0, 1.0))
        values = np.linspace(low, high, 40)
        percentiles = np.linspace(2, 98, 40)
    for piled in ("bottom", "top"):
        levels = percentiles.copy()
        if not feature.is_discrete:  # half the tracks on one edge value: the grid keeps its first percentile
            levels = np.where(np.arange(40) == 0, 2.0, levels * 0.5 + 49) if piled == "bottom" else levels * 0.5 + 1
        points = np.sin(np.linspace(0, 3, len(values))) * 3
        shape = pd.DataFrame({"characteristic": name, "value": values, "percentile": levels, "points": points})
        sentence = additive.describe_shape(shape, name)
        assert not edge_phrasing_problems(sentence, values, feature), (piled, sentence)
        if not feature.is_discrete and piled == "bottom":
            assert f"songs at {feature.format(values[0])}" in sentence, sentence
        if not feature.is_discrete and piled == "top":
            assert f"songs at {feature.format(values[-1])}" in sentence, sentence


def test_length_is_drawn_in_minutes():
    from virality.model.plots import shape_figure, surface_figure

    predictor = additive.load_additive()
    shapes = additive.shape_functions(predictor)
    fig = shape_figure(shapes[shapes["characteristic"] == "duration"], "duration")
    assert max(fig.data[0].x) < 20 and "minutes" in fig.layout.xaxis.title.text
    for pair in (p for p in additive.pairs(predictor) if "duration" in p):
        surface = surface_figure(additive.interaction_surface(predictor, pair), pair)
        axis = surface.layout.xaxis if pair[0] == "duration" else surface.layout.yaxis
        along = surface.data[0].x if pair[0] == "duration" else surface.data[0].y
        assert max(along) < 20 and "minutes" in axis.title.text


def test_page_shows_how_the_interval_is_calibrated_and_its_per_decile_coverage(page):
    results = model_report.load_results()
    shipped = additive.load_predictor().info.model.arch
    if "coverage" not in results["candidates"].get(shipped, {}):
        pytest.skip("no coverage in the committed results")
    captions = " ".join(c.value for c in page.caption)
    assert "Calibration: cross-fitted" in captions
    assert f"{results['candidates'][shipped]['coverage']['mean']:.1%}" in captions
