import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import as_read, metric, open_app
from virality.data.demo import demo_song
from virality.explain.explanation import explain_song, summary_sentence
from virality.explain.methods import METHODS
from virality.features import default_song
from virality.markdown import escape_markdown

PAGE = "pages/explain.py"


@pytest.fixture
def page() -> AppTest:
    return open_app(PAGE)


def shown(at: AppTest, baseline: str = "typical") -> tuple[float, float]:
    """The song's score and the baseline's, from the metrics labelled as the page labels them."""
    label = "The typical track" if baseline == "typical" else escape_markdown(baseline)  # metric labels are Markdown
    return float(metric(at, "This song")), float(metric(at, label))


@pytest.mark.parametrize("method", list(METHODS))
def test_each_method_shows_the_score_waterfall_and_summary(page, bundled, method):
    page.selectbox(key="explain_method").set_value(method).run()
    assert not page.exception
    expected = explain_song(bundled, default_song(), method=method)
    assert shown(page) == (round(expected.score, 1), round(expected.baseline_score, 1))
    assert as_read(page.info[0].value) == summary_sentence(expected)
    assert len(page.get("plotly_chart")) >= 5


def test_demo_baseline_changes_the_comparison(page, bundled):
    title = "Demo — Summer Hook"
    page.selectbox(key="explain_baseline").set_value(title).run()
    assert not page.exception
    expected = explain_song(bundled, default_song(), demo_song(title), baseline_label=title)
    assert shown(page, title) == (round(expected.score, 1), round(expected.baseline_score, 1))
    assert as_read(page.info[0].value) == summary_sentence(expected)


def test_a_song_scored_on_predict_is_offered_as_baseline(bundled):
    at = open_app()
    at.slider(key="w_danceability").set_value(0.95).run()
    scored = dict(default_song(), danceability=0.95)
    at.slider(key="w_energy").set_value(0.3).run()
    at.switch_page(PAGE).run()
    options = at.selectbox(key="explain_baseline").options
    label = next(o for o in options if "scored" in o and f"{bundled.predict_song(scored).score:.1f}" in o)
    at.selectbox(key="explain_baseline").set_value(label).run()
    assert not at.exception
    current = dict(scored, energy=0.3)
    expected = explain_song(bundled, current, scored)
    assert shown(at, label) == (round(expected.score, 1), round(expected.baseline_score, 1))


def test_pair_view_and_same_pair_message(page):
    page.selectbox(key="pair_first").set_value("tempo").run()
    page.selectbox(key="pair_second").set_value("tempo").run()
    assert not page.exception
    assert any("two different" in e.value for e in page.error)
    assert "Strongest combinations" in page.markdown[0].value or "simply add up" in page.markdown[0].value


def test_picks_survive_a_visit_to_another_page(page):
    page.selectbox(key="explain_method").set_value("shapley").run()
    page.selectbox(key="explain_baseline").set_value("Demo — Verse Heavy").run()
    page.switch_page("pages/predict.py").run()
    page.switch_page(PAGE).run()
    assert not page.exception
    assert page.selectbox(key="explain_method").value == "shapley"
    assert page.selectbox(key="explain_baseline").value == "Demo — Verse Heavy"
