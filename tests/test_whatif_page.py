"""AppTest of the What-if page: suggestions shown are the engine's, constraints reach the
search, and "Load into Predict" puts the suggestion into the shared song and the Predict score."""

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import open_app, predict_score
from virality.features import FEATURES, default_song
from virality.whatif.search import PRODUCER_CHOICES, search

PAGE = "pages/what_if.py"


@pytest.fixture
def page() -> AppTest:
    return open_app(PAGE)


def card_scores(at: AppTest) -> list[str]:
    return [m.value for m in at.metric]


def test_defaults_show_the_engines_suggestions(page, bundled):
    ticked = {f.name for f in FEATURES if page.checkbox(key=f"vary_{f.name}").value}
    assert ticked == set(PRODUCER_CHOICES)
    expected = search(bundled, default_song(), gain=5.0, vary=list(PRODUCER_CHOICES), max_changes=3, k=4)
    assert card_scores(page) == [f"{s.score:.1f}" for s in expected.suggestions]
    assert [b.key for b in page.button] == [f"load_{i}" for i in range(1, len(expected.suggestions) + 1)]
    assert any("re-scored" in s.value for s in page.success)
    assert len(page.get("plotly_chart")) == 1 and len(page.dataframe) == 1


def test_only_the_ticked_characteristic_is_edited(page):
    for name in PRODUCER_CHOICES:
        if name != "tempo":
            page.checkbox(key=f"vary_{name}").uncheck()
    page.number_input(key="whatif_gain").set_value(1.0)
    page.run()
    assert not page.exception
    edits = [m.value for m in page.markdown if m.value.startswith("- :green")]
    assert edits and all(e.count("- :green") == 1 and "tempo" in e for e in edits)


def test_unreachable_target_is_said_plainly(page):
    page.radio(key="whatif_goal").set_value("target").run()
    page.number_input(key="whatif_target").set_value(100.0).run()
    assert not page.exception
    assert any("could not be reached" in w.value for w in page.warning)
    assert any("short of the target" in c.value for c in page.caption)


def test_load_into_predict_updates_the_shared_song_and_the_predict_score(page, bundled):
    expected = search(bundled, default_song(), gain=5.0, vary=list(PRODUCER_CHOICES), max_changes=3, k=4)
    chosen = expected.suggestions[1]
    page.button(key="load_2").click().run()
    assert not page.exception
    assert page.session_state["song"] == chosen.song
    assert page.session_state["song_source"] == "what-if suggestion 2"
    assert any("Loaded what-if suggestion 2" in s.value for s in page.success)
    page.switch_page("pages/predict.py").run()
    assert not page.exception
    assert predict_score(page) == round(bundled.predict_song(chosen.song).score, 1)
    for name in chosen.changes:
        if name not in ("duration", "key", "mode"):
            assert page.slider(key=f"w_{name}").value == chosen.song[name]


def test_limits_reach_the_search(page, bundled):
    for name in PRODUCER_CHOICES:
        if name != "tempo":
            page.checkbox(key=f"vary_{name}").uncheck()
    page.number_input(key="whatif_gain").set_value(0.5)
    page.run()
    unbounded = search(bundled, default_song(), gain=0.5, vary=["tempo"], max_changes=3, k=4)
    page.slider(key="bound_tempo").set_value((110.0, 118.0)).run()
    assert not page.exception
    bounded = search(bundled, default_song(), gain=0.5, vary=["tempo"], bounds={"tempo": (110.0, 118.0)},
                     max_changes=3, k=4)
    assert bounded.suggestions and all(110.0 <= s.song["tempo"] <= 118.0 for s in bounded.suggestions)
    assert any(not 110.0 <= s.song["tempo"] <= 118.0 for s in unbounded.suggestions)  # the limit binds
    assert card_scores(page) == [f"{s.score:.1f}" for s in bounded.suggestions]
    if not bounded.reached:
        assert any("could not be reached" in w.value for w in page.warning)
