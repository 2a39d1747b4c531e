"""The song lives in the address bar and in a file: ``virality.session`` round-trips it, and
every page reads a link on a session's first run and writes the song back on every run."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import APP, ROOT, open_app
from ui.layout import PAGES
from virality.data.demo import demo_song
from virality.features import BY_NAME, FEATURE_NAMES, FEATURES, default_song, load_song_arg, parse_song_json
from virality.session import song_from_query, song_link, song_to_json, song_to_query, value_text

LINKED = dict(default_song(), danceability=0.81, energy=0.7, key=2.0, mode=0.0, loudness=-4.3, tempo=128.0,
              duration=201_000.0)


def random_song(rng: np.random.Generator, on_grid: bool) -> dict[str, float]:
    """A valid song; ``on_grid``: every value on its slider's step (what the controls make)."""
    song = {}
    for feature in FEATURES:
        value = float(rng.uniform(feature.low, feature.high))
        song[feature.name] = feature.snap(value) if on_grid or feature.is_discrete else value
    return song


@pytest.mark.parametrize("on_grid", [True, False])
def test_query_and_json_round_trip_exactly(on_grid):
    rng = np.random.default_rng(7)
    for _ in range(200):
        song = random_song(rng, on_grid)
        query = song_to_query(song)
        assert list(query) == list(FEATURE_NAMES)
        assert song_from_query(query) == (song, [])
        assert parse_song_json(song_to_json(song)) == (song, [])


def test_values_on_the_slider_step_read_as_spotify_units():
    assert song_to_query(default_song()) == {
        "danceability": "0.74", "energy": "0.64", "key": "5", "loudness": "-6.5", "mode": "1", "speechiness": "0.08",
        "acousticness": "0.12", "instrumentalness": "0.00", "liveness": "0.12", "valence": "0.53", "tempo": "122",
        "duration": "186000"}
    assert value_text("loudness", -0.0) == "0.0" and value_text("danceability", 0.7431) == "0.7431"


def test_missing_values_take_their_typical_value_and_bad_ones_are_named():
    song, problems = song_from_query({"danceability": "0.9", "tempo": "fast", "key": ["3", "F#"], "loudness": "9",
                                      "mode": "minor", "duration": "3:05", "utm_source": "chat"})
    assert song == dict(default_song(), danceability=0.9, key=6.0, mode=0.0, duration=185_000.0)
    assert len(problems) == 2
    assert problems[0].startswith("loudness: 9") and "outside the valid range" in problems[0]
    assert problems[1].startswith("tempo:") and "'fast'" in problems[1]


def test_song_link_is_the_base_url_with_the_song_as_its_query():
    link = song_link("http://localhost:8501/", LINKED)
    assert link.startswith("http://localhost:8501/?danceability=0.81&energy=0.70&key=2&loudness=-4.3&mode=0&")
    assert link.endswith("&tempo=128&duration=201000")


def test_the_cli_reads_the_downloaded_song_file(tmp_path, bundled):
    path = tmp_path / "song.json"
    path.write_text(song_to_json(LINKED), encoding="utf-8")
    assert load_song_arg(str(path)) == (LINKED, [])
    done = subprocess.run([sys.executable, "-m", "virality", "explain", "--song", str(path), "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["score"] == pytest.approx(bundled.predict_song(LINKED).score, abs=1e-3)


def test_help_imports_no_torch():
    """``python -m virality --help`` answers without importing torch (it took 5–24 s with it)."""
    probe = ("import runpy, sys\nsys.argv = ['virality', '--help']\ntry:\n    runpy.run_module('virality', "
             "run_name='__main__')\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "usage" in done.stdout and done.stdout.strip().endswith("False")


# --- the app -----------------------------------------------------------------------------

def open_link(query: dict) -> AppTest:
    """A new session opened at the app's address with ``query`` as its query string."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params = dict(query)
    at.run()
    assert not at.exception, at.exception
    return at


def controls(at: AppTest) -> dict[str, float]:
    """The song the Predict controls show."""
    from virality.features import parse_duration

    song = {f.name: at.slider(key=f"w_{f.name}").value for f in FEATURES if f.kind in ("ratio", "number")}
    song.update(key=float(at.selectbox(key="w_key").value), mode=float(at.radio(key="w_mode").value),
                duration=parse_duration(at.text_input(key="w_duration").value))
    return song


def url_song(at: AppTest) -> dict[str, float]:
    song, problems = song_from_query(at.query_params)
    assert not problems and all(name in at.query_params for name in FEATURE_NAMES)
    return song


def test_a_link_opens_its_song_on_predict_and_the_address_keeps_it(bundled):
    at = open_link(song_to_query(LINKED))
    assert controls(at) == LINKED
    assert float(at.metric[0].value) == round(bundled.predict_song(LINKED).score, 1)
    assert not at.warning
    at.slider(key="w_valence").set_value(0.2).run()
    moved = dict(LINKED, valence=0.2)
    assert url_song(at) == moved
    assert song_link("", moved) in [c.value for c in at.code]  # "Copy link to this song"


@pytest.mark.parametrize("path", [path for path, _, _ in PAGES[1:]])
def test_every_page_keeps_the_song_in_its_address(path):
    at = open_link(song_to_query(LINKED))
    at.switch_page(path).run()
    assert not at.exception, at.exception
    assert at.session_state["song"] == LINKED and url_song(at) == LINKED


def test_a_bad_value_in_a_link_is_named_and_takes_the_typical_value():
    at = open_link({"danceability": "0.9", "tempo": "fast"})
    assert controls(at) == dict(default_song(), danceability=0.9)
    warning = " ".join(w.value for w in at.warning)
    assert "tempo: 'fast' is not a number" in warning
    at.switch_page("pages/explain.py").run()
    assert "tempo: 'fast'" in " ".join(w.value for w in at.warning)  # still the link's song: still said
    at.switch_page("pages/predict.py").run()
    at.slider(key="w_tempo").set_value(100.0).run()
    assert not [w for w in at.warning if "tempo: 'fast'" in w.value]  # the user moved on


def test_a_session_reads_the_address_only_on_its_first_run():
    at = open_link(song_to_query(LINKED))
    at.button[0].click().run()  # Reset to typical
    assert at.session_state["song"] == default_song() and url_song(at) == default_song()


def test_without_a_link_the_address_gets_the_typical_song():
    at = open_app()
    assert url_song(at) == default_song()


def test_a_song_file_opens_and_a_bad_one_keeps_the_song(bundled):
    at = open_app()
    song = demo_song("Demo — Summer Hook")
    at.file_uploader(key="song_file").set_value(("hook.json", song_to_json(song).encode(), "application/json")).run()
    assert not at.exception
    assert controls(at) == {n: BY_NAME[n].snap(v) for n, v in song.items()}
    assert any("Opened hook.json" in s.value for s in at.success)
    partial = json.dumps({"tempo": 90}).encode()
    at.file_uploader(key="song_file").set_value(("part.json", partial, "application/json")).run()
    assert controls(at) == dict(default_song(), tempo=90.0)
    assert any("set to the typical track's value: danceability" in s.value for s in at.success)
    at.file_uploader(key="song_file").set_value(("bad.json", b'{"tempo": "fast"}', "application/json")).run()
    assert not at.exception
    assert any("bad.json: tempo:" in e.value and "unchanged" in e.value for e in at.error)
    assert controls(at) == dict(default_song(), tempo=90.0)
    assert [b.label for b in at.get("download_button")] == ["Download this song (JSON)"]
