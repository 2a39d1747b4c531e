"""The app as a person uses it: ``streamlit run app.py`` driven by headless Chromium.

One test per page; screenshots land in ``test-output/`` (git-ignored). Without Chromium
the tests skip, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import time

import pandas as pd
import pytest

from tests.browser import (
    DOWNLOADS,
    browser_binaries,
    by_text,
    chromium,
    labelled,
    metric_value,
    open_app,
    open_page,
    press,
    screenshot,
    streamlit_server,
    type_over,
    until,
    wait_idle,
)
from virality.data.demo import DEMO_CSV, demo_tracks
from virality.features import BY_NAME, FEATURES, KEY_NAMES, MODE_NAMES, default_song, parse_duration

pytestmark = pytest.mark.browser

SCORE_LABEL = "Predicted popularity"
# Labels on pages built on other branches: adapt here if a page words them differently.
WHATIF_GAIN_LABEL = "Points to add"          # the number input for "+10 points"
WHATIF_RUN_BUTTON = "Find"            # starts the search (omit if the page searches on change)
WHATIF_LOAD_BUTTON = "Load into Predict"           # loads a suggestion into Predict
BATCH_DOWNLOAD_BUTTON = "Download the ranked table"


@pytest.fixture(scope="module")
def server():
    browser_binaries()  # skip (or fail under CI) before starting anything
    with streamlit_server() as url:
        yield url


@pytest.fixture(scope="module")
def driver(server):
    browser = chromium(*browser_binaries())
    yield browser
    browser.quit()


@pytest.fixture
def page(driver, server):
    """A fresh session on Predict."""
    open_app(driver, server)
    return driver


def slider_value(driver, name: str) -> float:
    feature = BY_NAME[name]
    return float(labelled(driver, f"{feature.label} (", 'input[type="range"]').get_attribute("value"))


def song_on_screen(driver) -> dict[str, float]:
    """The song the Predict controls show, read from the page like a person would."""
    song = {}
    for feature in FEATURES:
        label = f"{feature.label} ("
        if feature.kind == "key":
            shown = labelled(driver, label, 'input[role="combobox"]').get_attribute("value")
            song[feature.name] = float(KEY_NAMES.index(shown))
        elif feature.kind == "mode":
            shown = labelled(driver, label, '[data-testid="stRadioOption"][data-selected="true"]').text.strip()
            song[feature.name] = float({v: k for k, v in MODE_NAMES.items()}[shown])
        elif feature.kind == "duration":
            song[feature.name] = parse_duration(labelled(driver, label, "input").get_attribute("value"))
        else:
            song[feature.name] = slider_value(driver, feature.name)
    return song


def test_predict_slider_moved_by_keyboard_changes_the_score(page, bundled):
    start = metric_value(page, SCORE_LABEL)
    assert start == f"{bundled.predict_song(default_song()).score:.1f}"
    screenshot(page, "predict-start")

    thumb = labelled(page, "Danceability (", 'input[type="range"]')
    press(page, thumb, *["\ue014"] * 15)  # ARROW_RIGHT: 15 steps of 0.01
    until(page, lambda d: metric_value(d, SCORE_LABEL) != start, message="the score never changed")
    wait_idle(page)

    moved = slider_value(page, "danceability")
    assert moved == pytest.approx(BY_NAME["danceability"].default + 0.15)
    song = dict(default_song(), danceability=moved)
    assert song_on_screen(page) == pytest.approx(song)
    assert metric_value(page, SCORE_LABEL) == f"{bundled.predict_song(song).score:.1f}"
    screenshot(page, "predict-moved")


def test_explain_shows_the_waterfall(page):
    open_page(page, "Explain")
    until(page, lambda d: d.find_elements("css selector", '[data-testid="stPlotlyChart"] .waterfalllayer'),
          message="no plotly waterfall on Explain")
    screenshot(page, "explain")


def test_whatif_plus_ten_and_load_a_suggestion_into_predict(page, bundled):
    before = bundled.predict_song(default_song()).score
    open_page(page, "What-if")
    gain = labelled(page, WHATIF_GAIN_LABEL)
    type_over(page, gain, "10")
    wait_idle(page)
    assert float(labelled(page, WHATIF_GAIN_LABEL).get_attribute("value")) == 10
    by_text(page, f"to reach {before + 10:.1f} from {before:.1f}", '[data-testid="stAlert"]')
    run = [b for b in page.find_elements("css selector", '[data-testid="stBaseButton-secondary"], '
                                                         '[data-testid="stBaseButton-primary"]')
           if WHATIF_RUN_BUTTON in b.text]
    if run:
        run[0].click()
        wait_idle(page)
    screenshot(page, "whatif")
    click_when_settled(page, WHATIF_LOAD_BUTTON)
    wait_idle(page)
    if "Predict" not in page.find_element("css selector", "h1").text:
        open_page(page, "Predict")
    song = song_on_screen(page)
    assert song != pytest.approx(default_song())
    assert metric_value(page, SCORE_LABEL) == f"{bundled.predict_song(song).score:.1f}"
    assert bundled.predict_song(song).score > before
    screenshot(page, "whatif-loaded-into-predict")


def click_when_settled(page, text: str, attempts: int = 5) -> None:
    """Click the button with ``text``; a rerun may replace it between finding and clicking."""
    from selenium.common.exceptions import StaleElementReferenceException

    for attempt in range(attempts):
        try:
            by_text(page, text, "button").click()
            return
        except StaleElementReferenceException:
            if attempt == attempts - 1:
                raise
            wait_idle(page)


def test_batch_upload_demo_csv_and_download_matching_scores(page, bundled):
    open_page(page, "Batch")
    for old in DOWNLOADS.glob("*.csv"):
        old.unlink()
    page.find_element("css selector", '[data-testid="stFileUploader"] input[type="file"]').send_keys(str(DEMO_CSV))
    wait_idle(page)
    by_text(page, BATCH_DOWNLOAD_BUTTON, '[data-testid="stDownloadButton"] button').click()
    saved = until(page, lambda d: [p for p in DOWNLOADS.glob("*.csv") if p.stat().st_size], timeout=60,
                  message="no CSV was downloaded")[0]
    time.sleep(0.5)  # let Chromium finish renaming the partial file
    screenshot(page, "batch")

    result = pd.read_csv(saved)
    demo = demo_tracks()
    expected = bundled.predict_frame(demo)
    assert len(result) == len(demo)
    # the download is ranked by score: compare track by track
    by_title = result.set_index("title")["predicted_popularity"].astype(float)
    got = by_title.loc[demo["title"]].to_numpy()
    assert got == pytest.approx(expected["predicted_popularity"].to_numpy(), abs=1e-3)


def test_model_page_draws_the_benchmark_calibration_and_shapes(page):
    open_page(page, "Model")
    for heading in ("Against baselines, on tracks it never saw", "Is the 80 % interval honest?",
                    "Which characteristics, and which combinations, go with popularity"):
        by_text(page, heading, "h3")
    assert page.find_elements("css selector", '[data-testid="stDataFrame"]'), "no benchmark table"
    # held-out scatter, calibration, one shape per characteristic and the pair surfaces, each drawn
    until(page, lambda d: len(d.find_elements("css selector", '[data-testid="stPlotlyChart"] .main-svg')) >= 2 + 12,
          message="the Model page's charts were not drawn")
    screenshot(page, "model")
