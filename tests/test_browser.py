"""The app as a person uses it: ``streamlit run app.py`` driven by headless Chromium.

One test per page; screenshots land in ``test-output/`` (git-ignored). Without Chromium
the tests skip, except under CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pandas as pd
import pytest

from tests.apptest import FORBIDDEN
from tests.browser import (
    DESKTOP,
    DOWNLOADS,
    OUTPUT,
    PHONE,
    browser_binaries,
    by_text,
    chromium,
    labelled,
    metric_value,
    open_app,
    open_page,
    press,
    screenshot,
    show_menu,
    streamlit_server,
    type_over,
    until,
    wait_idle,
)
from ui.layout import PAGES
from virality.data.demo import DEMO_CSV, demo_tracks
from virality.features import BY_NAME, FEATURES, KEY_NAMES, MODE_NAMES, default_song, parse_duration, parse_song_json
from virality.model.report import headline, load_results
from virality.plotting import fit_text
from virality.session import song_from_query, song_to_query

# one xdist group: under `make test` one worker runs the browser tests and starts the server and Chromium
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

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
    """A fresh session on Predict, on a desktop-sized window."""
    driver.set_window_size(*DESKTOP)
    open_app(driver, server)
    return driver


def address_song(driver) -> dict[str, float]:
    """The song the address bar carries (every one of the 12 names must be there)."""
    params = parse_qs(urlsplit(driver.current_url).query)
    assert set(song_to_query(default_song())) <= set(params), driver.current_url
    song, problems = song_from_query(params)
    assert not problems
    return song


def shown_link(driver) -> str:
    """The text of Predict's "Copy link to this song" box."""
    return driver.find_element("css selector", '[data-testid="stCode"] code').get_attribute("textContent").strip()


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


@pytest.mark.slow
def test_whatif_plus_ten_and_load_a_suggestion_into_predict(page, bundled):
    before = bundled.predict_song(default_song()).score
    open_page(page, "What-if")
    gain = labelled(page, WHATIF_GAIN_LABEL)
    type_over(page, gain, "10")
    wait_idle(page)
    assert float(labelled(page, WHATIF_GAIN_LABEL).get_attribute("value")) == 10
    by_text(page, f"to reach {before + 10:.1f} from {before:.1f}", '[data-testid="stAlert"]')
    by_text(page, "Reach a score", '[data-testid="stRadioOption"]').click()
    wait_idle(page)
    by_text(page, "Raise by (points)", '[data-testid="stRadioOption"]').click()
    wait_idle(page)
    assert float(labelled(page, WHATIF_GAIN_LABEL).get_attribute("value")) == 10  # kept across the switch
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
    assert bundled.predict_song(song).score >= before + 10 - 0.05  # reached (the score is shown to 0.1)
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
    by_text(page, "Every model's scores", '[data-testid="stExpander"] summary').click()
    until(page, lambda d: [t for t in d.find_elements("css selector", '[data-testid="stDataFrame"]') if t.is_displayed()],
          timeout=20, message="no benchmark table in the expander")
    # held-out scatter, calibration, one shape per characteristic and the pair surfaces, each drawn
    until(page, lambda d: len(d.find_elements("css selector", '[data-testid="stPlotlyChart"] .main-svg')) >= 2 + 12,
          message="the Model page's charts were not drawn")
    screenshot(page, "model")


@pytest.mark.slow
def test_audio_upload_applies_tempo_key_mode_and_offers_loudness_and_length(page, bundled, tmp_path):
    """A 20 s clip: tempo, key and mode fill the controls; the measured LUFS and the clip's
    length are shown, not applied, so the score moves only with tempo, key and mode."""
    from tests.audio_signals import song, wav_bytes

    clip = tmp_path / "clip.wav"
    clip.write_bytes(wav_bytes(song(128, 2, False, 20.0)))
    by_text(page, "Start from an audio file", '[data-testid="stExpander"] summary').click()
    page.find_element("css selector", '[data-testid="stFileUploader"] input[type="file"]').send_keys(str(clip))
    by_text(page, "Measured from", "p", timeout=90)
    wait_idle(page)
    by_text(page, "LUFS", '[data-testid="stCaptionContainer"]')
    by_text(page, "Is that the whole song?", "p")
    assert page.find_elements("css selector", '[data-testid="stAudio"]'), "no player for a file that was analysed"
    song_shown = song_on_screen(page)
    assert (song_shown["key"], song_shown["mode"]) == (2.0, 0.0) and abs(song_shown["tempo"] - 128) <= 2
    assert (song_shown["loudness"], song_shown["duration"]) == (default_song()["loudness"], default_song()["duration"])
    assert metric_value(page, SCORE_LABEL) == f"{bundled.predict_song(song_shown).score:.1f}"
    screenshot(page, "predict-audio")


# --- issue 13: the song in the address, phone width, words and charts ------------------------

LINKED = dict(default_song(), danceability=0.81, energy=0.7, key=2.0, mode=0.0, loudness=-4.3, tempo=128.0,
              duration=201_000.0)


@pytest.mark.slow
def test_a_song_link_opens_on_any_page_survives_a_reload_and_moves_between_pages(driver, bundled):
    """The producer's first visit to a freshly started app is the link to Explain the artist sent,
    with one value mangled on the way."""
    expected = dict(LINKED, liveness=BY_NAME["liveness"].default)  # the mangled one: typical
    score = f"{bundled.predict_song(expected).score:.1f}"
    with streamlit_server(log=OUTPUT / "streamlit-fresh.log") as fresh:
        driver.set_window_size(*DESKTOP)
        open_app(driver, fresh, "/explain?" + urlencode(dict(song_to_query(LINKED), liveness="lots")))
        by_text(driver, "liveness: 'lots' is not a number", '[data-testid="stAlert"]')
        menu = [e.text.split("\n")[-1] for e in driver.find_elements("css selector", '[data-testid="stSidebarNavLink"]')]
        assert menu == [label for _, label, _ in PAGES]  # the app's own menu, not Streamlit's folder list
        assert metric_value(driver, "This song") == score
        assert address_song(driver) == expected
        screenshot(driver, "link-explain")

        open_page(driver, "Predict")
        assert song_on_screen(driver) == pytest.approx(expected)
        assert metric_value(driver, SCORE_LABEL) == score
        assert address_song(driver) == expected
        assert shown_link(driver) == driver.current_url  # "Copy link to this song"

        driver.refresh()
        wait_idle(driver)
        assert song_on_screen(driver) == pytest.approx(expected)
        assert metric_value(driver, SCORE_LABEL) == score
        assert not [a for a in driver.find_elements("css selector", '[data-testid="stAlert"]') if "lots" in a.text]

        press(driver, labelled(driver, "Danceability (", 'input[type="range"]'), *["\ue014"] * 5)
        moved = dict(expected, danceability=0.86)
        until(driver, lambda d: address_song(d) == moved, message="the address did not follow the slider")
        wait_idle(driver)
        open_page(driver, "What-if")
        by_text(driver, f"predicted {bundled.predict_song(moved).score:.1f}")
        assert address_song(driver) == moved
        screenshot(driver, "link-whatif")


@pytest.mark.slow
def test_a_song_file_downloads_and_opens_in_a_new_session(page, server, bundled):
    for old in DOWNLOADS.glob("song*.json"):
        old.unlink()
    press(page, labelled(page, "Tempo (", 'input[type="range"]'), *["\ue014"] * 10)
    until(page, lambda d: slider_value(d, "tempo") == 132, message="tempo did not move")
    wait_idle(page)
    song = song_on_screen(page)
    by_text(page, "Download this song (JSON)", '[data-testid="stDownloadButton"] button').click()
    saved = until(page, lambda d: [p for p in DOWNLOADS.glob("song*.json") if p.stat().st_size], timeout=60,
                  message="no song file was downloaded")[0]
    time.sleep(0.5)
    assert parse_song_json(saved.read_text(encoding="utf-8")) == (song, [])

    open_app(page, server)  # a new session: the typical song
    assert song_on_screen(page) == pytest.approx(default_song())
    labelled(page, "Open a song file", 'input[type="file"]').send_keys(str(saved))
    until(page, lambda d: slider_value(d, "tempo") == 132, message="the song file did not open")
    wait_idle(page)
    assert song_on_screen(page) == pytest.approx(song)
    assert metric_value(page, SCORE_LABEL) == f"{bundled.predict_song(song).score:.1f}"


def in_view(driver, element) -> bool:
    return driver.execute_script("const r = arguments[0].getBoundingClientRect(); "
                                 "return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight", element)


def test_phone_predict_keeps_the_score_in_view_and_the_controls_in_order(page, bundled):
    page.set_window_size(*PHONE)
    wait_idle(page)
    button = page.find_element("css selector", '[data-testid="stExpandSidebarButton"]')
    assert page.execute_script("return getComputedStyle(arguments[0], '::after').content", button) == '"Pages"'
    tops = [labelled(page, f"{f.label} (", "*").rect["y"] for f in FEATURES]
    assert tops == sorted(tops), "the controls are not in the characteristics' order"
    line = page.find_element("css selector", ".st-key-score_line")
    typical = bundled.predict_song(default_song())
    assert f"{typical.score:.1f} predicted popularity" in line.text
    assert f"TikTok fit {fit_text(typical.tiktok_fit)}" in line.text  # both scores in view on a phone
    screenshot(page, "predict-390")

    length = labelled(page, "Length (", "input")
    page.execute_script("arguments[0].scrollIntoView({block: 'end'})", length)
    tempo = labelled(page, "Tempo (", 'input[type="range"]')
    press(page, tempo, *["\ue014"] * 8)  # the slider near the bottom of the list
    song = dict(default_song(), tempo=130.0)
    moved = bundled.predict_song(song)
    expected = f"{moved.score:.1f} predicted popularity"
    until(page, lambda d: expected in d.find_element("css selector", ".st-key-score_line").text,
          message="the score line did not follow the slider")
    assert f"TikTok fit {fit_text(moved.tiktok_fit)}" in page.find_element("css selector", ".st-key-score_line").text
    assert in_view(page, page.find_element("css selector", ".st-key-score_line")) and in_view(page, tempo)
    screenshot(page, "predict-390-scrolled", full=False)

    page.set_window_size(*DESKTOP)
    wait_idle(page)
    assert not page.find_element("css selector", ".st-key-score_line").is_displayed()  # the big score shows
    assert metric_value(page, SCORE_LABEL) == f"{bundled.predict_song(song).score:.1f}"
    screenshot(page, "predict-1400")


def waterfall_labels_fit(driver) -> bool:
    """Every y label of the Explain waterfall lies inside its chart (none cut at the left)."""
    return driver.execute_script("""
        const chart = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
            .find(c => c.querySelector('.waterfalllayer'));
        if (!chart) return false;
        const box = chart.getBoundingClientRect();
        const labels = [...chart.querySelectorAll('.ytick text')];
        return labels.length >= 14 && labels.every(t => {
            const r = t.getBoundingClientRect(); return r.left >= box.left - 1 && r.right <= box.right + 1; });""")


@pytest.mark.slow
def test_phone_explain_batch_model_and_whatif(page):
    page.set_window_size(*PHONE)
    open_page(page, "Explain")
    until(page, waterfall_labels_fit, timeout=30, message="a waterfall label is cut off at 390 px")
    screenshot(page, "explain-390")

    open_page(page, "Batch")
    page.find_element("css selector", '[data-testid="stFileUploader"] input[type="file"]').send_keys(str(DEMO_CSV))
    wait_idle(page)
    headers = until(page, lambda d: [h.get_attribute("textContent") for h in d.find_elements(
        "css selector", '[data-testid="stDataFrame"] table th')], message="no ranked table")
    assert headers[1:3] == ["rank", "score"]  # pinned beside the row number: in view on a phone
    screenshot(page, "batch-390")
    for label in ("Model", "What-if"):
        open_page(page, label)
        screenshot(page, f"{label.lower().replace('-', '')}-390")


def screen_text(driver) -> str:
    """The page's text as shown, with the text drawn inside its charts."""
    charts = driver.execute_script("return [...document.querySelectorAll('.main-svg text')].map(t => t.textContent)")
    return driver.find_element("css selector", "body").text + "\n" + "\n".join(charts)


@pytest.mark.slow
def test_words_and_charts_read_plainly_on_every_page(page, bundled):
    sentence = headline(load_results(), bundled.info.model.arch)
    show_menu(page)
    assert sentence in page.find_element("css selector", '[data-testid="stSidebar"]').text
    for _, label, _ in PAGES:
        if label != "Predict":
            open_page(page, label)
        if label == "Batch":
            page.find_element("css selector", '[data-testid="stFileUploader"] input[type="file"]').send_keys(
                str(DEMO_CSV))
            wait_idle(page)
        time.sleep(1)  # let plotly draw
        assert not FORBIDDEN.findall(screen_text(page)), label
        assert not [m for m in page.find_elements("css selector", ".modebar") if m.is_displayed()], label
        if label == "Explain":
            by_text(page, "Which method? Keep Integrated Gradients")
            ticks = page.execute_script("return [...document.querySelectorAll('.xaxislayer-above text')].map(t => t.textContent)")
            assert {"C", "F", "B", "minor", "major"} <= set(ticks)
        if label == "Model":
            assert page.find_element("css selector", "h4").text == sentence  # the page's first words
            assert not [t for t in page.find_elements("css selector", '[data-testid="stDataFrame"]') if t.is_displayed()]
        screenshot(page, f"{label.lower().replace('-', '')}-1400")


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


@pytest.mark.slow
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
