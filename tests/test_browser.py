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
    press(page, gain, "\ue009a", "\ue017", "10", "\ue007")  # Ctrl+A, Delete, 10, Enter
    wait_idle(page)
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


@pytest.fixture
def listener():
    """A local TCP server on a free port that records the first bytes of every connection it
    gets (an HTTP request, or a TLS hello for an https:// URL): it must get none."""
    import socketserver
    import threading

    seen: list[bytes] = []

    class Record(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.settimeout(2)
            try:
                seen.append(self.request.recv(80))
            except OSError:
                seen.append(b"(connected)")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Record)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


def hostile_files(folder, port: int) -> tuple:
    """An audio file and a CSV whose names, header and cells are Markdown/HTML pointing at ``port``.
    A name cannot hold "/", but a browser on an http:// page reads "https:127.0.0.1:port" as
    https://127.0.0.1:port/ (the listener sees the TLS hello)."""
    from tests.audio_signals import song, wav_bytes

    name = f"![n](https:127.0.0.1:{port}?name)"
    audio = folder / f"{name}.wav"
    audio.write_bytes(wav_bytes(song(120, 0, True, 20.0)))
    frame = pd.read_csv(DEMO_CSV, dtype=str)
    frame[f"![h](http://127.0.0.1:{port}/header.png)"] = "x"
    frame.loc[0, "title"] = f"![t](http://127.0.0.1:{port}/title.png)"
    frame.loc[1, "artist"] = f'<img src="http://127.0.0.1:{port}/tag.png">'
    table = folder / f"{name}.csv"
    frame.to_csv(table, index=False)
    return name, audio, table


def test_user_text_is_shown_as_text_and_fetches_nothing(page, listener, tmp_path):
    port, seen = listener
    name, audio, table = hostile_files(tmp_path, port)
    by_text(page, "Start from an audio file", '[data-testid="stExpander"] summary').click()
    page.find_element("css selector", '[data-testid="stExpander"] input[type="file"]').send_keys(str(audio))
    by_text(page, f"Measured from {name}.wav", '[data-testid="stMarkdown"]', timeout=120)
    wait_idle(page)
    open_page(page, "What-if")
    by_text(page, f"audio: {name}.wav", '[data-testid="stMarkdown"]')

    open_page(page, "Batch")
    page.find_element("css selector", '[data-testid="stFileUploader"] input[type="file"]').send_keys(str(table))
    by_text(page, f"{name}.csv: scored 8 of 8 tracks", '[data-testid="stAlert"]', timeout=120)
    wait_idle(page)
    by_text(page, "How your columns were read", '[data-testid="stExpander"] summary').click()
    by_text(page, f"artist, ![h](http://127.0.0.1:{port}/header.png)", '[data-testid="stCaptionContainer"]')  # kept as they are
    for old in DOWNLOADS.glob("*.html"):
        old.unlink()
    by_text(page, "Download a report to share", '[data-testid="stDownloadButton"] button').click()
    report = until(page, lambda d: [p for p in DOWNLOADS.glob("*.html") if p.stat().st_size], timeout=60,
                   message="no HTML report was downloaded")[0]
    screenshot(page, "batch-hostile-names")
    time.sleep(0.5)
    page.get(report.resolve().as_uri())
    by_text(page, f"![t](http://127.0.0.1:{port}/title.png)", "td")
    time.sleep(1.0)  # anything the page would fetch has been asked for by now
    assert seen == [], f"the browser connected {len(seen)} time(s) for text a user gave: {seen[0][:60]!r}"
