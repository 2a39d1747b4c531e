import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import as_read, open_app, predict_score
from virality.data.demo import demo_song
from virality.features import default_song
from virality.model.report import load_results


@pytest.fixture
def app() -> AppTest:
    return open_app(timeout=60)


def test_first_render_shows_the_typical_song_score(app, bundled):
    assert predict_score(app) == round(bundled.predict_song(default_song()).score, 1)
    sidebar = " ".join(c.value for c in app.sidebar.caption)
    assert "typically off by" in sidebar
    cv_r2 = load_results()["candidates"][bundled.info.model.arch]["r2"]["mean"]
    assert "cross-validation by song" in sidebar and f"R² {cv_r2:.2f}" in sidebar


def test_moving_a_slider_shows_exactly_what_virality_predicts(app, bundled):
    before = predict_score(app)
    app.slider(key="w_danceability").set_value(0.95).run()
    app.slider(key="w_tempo").set_value(170.0).run()
    expected = bundled.predict_song(dict(default_song(), danceability=0.95, tempo=170.0)).score
    assert predict_score(app) == round(expected, 1) != before


def test_key_mode_and_length_controls(app, bundled):
    app.selectbox(key="w_key").set_value(9).run()
    app.radio(key="w_mode").set_value(0).run()
    app.text_input(key="w_duration").input("2:30").run()
    expected = bundled.predict_song(dict(default_song(), key=9, mode=0, duration=150_000)).score
    assert predict_score(app) == round(expected, 1)


def test_bad_length_shows_an_error_and_keeps_the_score(app):
    before = predict_score(app)
    app.text_input(key="w_duration").input("three minutes").run()
    assert not app.exception
    assert any("minutes:seconds" in as_read(e.value) for e in app.error)
    assert predict_score(app) == before


def test_demo_track_loads_and_reset_returns_to_typical(app, bundled):
    title = "Demo — Summer Hook"
    app.selectbox(key="demo_pick").set_value(title).run()
    assert predict_score(app) == round(bundled.predict_song(demo_song(title)).score, 1)
    assert app.slider(key="w_tempo").value == demo_song(title)["tempo"]
    app.button(key="reset_song").click().run()
    assert predict_score(app) == round(bundled.predict_song(default_song()).score, 1)


def test_unusual_song_gets_a_warning(app):
    assert not app.warning
    app.slider(key="w_loudness").set_value(-50.0).run()
    app.slider(key="w_tempo").set_value(240.0).run()
    assert any("Unlike the real tracks" in w.value for w in app.warning)
