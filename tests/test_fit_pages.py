"""TikTok fit on every page (issue 15 point 4): what each page shows is what ``virality`` computes,
and a bundle without the fit model renders every page without it."""

from __future__ import annotations

import pytest
import streamlit as st

import ui.state
from tests.apptest import as_read, metric, open_app
from ui.layout import PAGES
from virality.config import ADDITIVE_DIR
from virality.features import default_song
from virality.model.prediction import load_predictor
from virality.plotting import FIT_MEANING, fit_text


@pytest.fixture
def no_fit(monkeypatch):
    """The app on the additive bundle, which has no TikTok-fit model (every cache emptied
    before and after, so no page sees the other bundle's results)."""
    predictor = load_predictor(ADDITIVE_DIR)
    assert predictor.fit is None
    monkeypatch.setattr(ui.state, "load_predictor", lambda: predictor)
    ui.state.get_predictor.clear()
    st.cache_data.clear()
    yield predictor
    ui.state.get_predictor.clear()
    st.cache_data.clear()


def markdown_texts(at) -> list[str]:
    return [as_read(m.value) for m in at.markdown]


# --- Predict -------------------------------------------------------------------------------

def test_predict_shows_the_fit_its_percentile_and_meaning_beside_the_score(bundled):
    at = open_app()
    at.slider(key="w_danceability").set_value(0.9).run()
    prediction = bundled.predict_song(dict(default_song(), danceability=0.9))
    assert metric(at, "TikTok fit") == fit_text(prediction.tiktok_fit) == f"{prediction.tiktok_fit:.0f}%"
    sentence = next(t for t in markdown_texts(at) if FIT_MEANING in t)
    assert f"higher than {prediction.fit_percentile:.0f}% of catalogue tracks" in sentence.replace("**", "")
    line = next(t for t in markdown_texts(at) if t.startswith(f"**{prediction.score:.1f}** predicted popularity"))
    assert f"TikTok fit **{fit_text(prediction.tiktok_fit)}**" in line


def test_every_page_renders_without_a_fit_model_and_shows_no_fit(no_fit):
    at = open_app()
    assert not [m for m in at.metric if m.label == "TikTok fit"]
    assert not [t for t in markdown_texts(at) if "TikTok fit" in t]
    for path, _, _ in PAGES[1:]:
        at.switch_page(path).run()
        assert not at.exception, (path, at.exception)
