"""The Model page renders from committed results only (no data set), and degrades gracefully."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import open_app
from virality import additive, model_report
from virality.features import FEATURE_NAMES

PAGE = "pages/5_Model.py"


def open_page() -> AppTest:
    return open_app(PAGE)


@pytest.fixture(scope="module")
def page() -> AppTest:
    at = open_page()
    assert not at.exception
    return at


def test_page_shows_the_benchmark_table_with_every_candidate(page):
    results = model_report.load_results()
    shown = page.dataframe[0].value
    assert set(shown["model"]) == set(results["candidates"])
    assert list(shown["RMSE"]) == sorted(shown["RMSE"])  # best first


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
    at = open_page()
    assert not at.exception
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
