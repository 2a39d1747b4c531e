"""The "Start from an audio file" box: measured values fill the controls, errors keep them."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import as_read, open_app
from tests.audio_signals import song, wav_bytes
from virality.audio.analysis import MEASURED, analyse
from virality.features import BY_NAME, default_song, format_duration

SONG = wav_bytes(song(128, 2, True, 20.0))


def predict_area():
    """What pages/predict.py renders in its left column, without the page chrome."""
    from ui.audio import audio_marks, audio_panel
    from ui.controls import song_controls

    audio_panel()
    song_controls(marks=audio_marks())


@pytest.fixture
def area() -> AppTest:
    at = AppTest.from_function(predict_area, default_timeout=60).run()
    assert not at.exception
    return at


def shown(at: AppTest) -> dict[str, float]:
    """The characteristics the controls show."""
    values = {name: at.slider(key=f"w_{name}").value for name in BY_NAME if BY_NAME[name].kind in ("ratio", "number")}
    values["key"] = at.selectbox(key="w_key").value
    values["mode"] = at.radio(key="w_mode").value
    values["duration"] = at.text_input(key="w_duration").value
    return values


def expected_controls(measured: dict[str, float]) -> dict:
    return {name: (format_duration(v) if name == "duration" else BY_NAME[name].snap(v)) for name, v in measured.items()}


def marks(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if "measured from audio" in c.value]


def test_upload_fills_the_measured_controls_and_keeps_the_others(area):
    area.slider(key="w_danceability").set_value(0.9).run()
    before = shown(area)
    area.file_uploader(key="audio_upload").set_value(("demo.wav", SONG, "audio/wav")).run()
    assert not area.exception
    truth = {name: m.value for name, m in analyse(SONG).values.items()}
    after = shown(area)
    assert {n: after[n] for n in MEASURED} == expected_controls(truth)
    assert {n: v for n, v in after.items() if n not in MEASURED} == {n: v for n, v in before.items() if n not in MEASURED}
    assert after["danceability"] == 0.9
    assert len(marks(area)) == len(MEASURED)
    assert len(area.get("audio")) == 1  # played back
    assert any("Measured from **demo.wav**" in as_read(m.value) for m in area.markdown)


def test_moving_a_measured_control_removes_only_its_mark_and_sticks(area):
    area.file_uploader(key="audio_upload").set_value(("demo.wav", SONG, "audio/wav")).run()
    area.slider(key="w_tempo").set_value(90.0).run()
    assert len(marks(area)) == len(MEASURED) - 1
    area.run()  # a rerun with the same file does not measure it again over the user's change
    assert area.slider(key="w_tempo").value == 90.0


@pytest.mark.parametrize("name,content", [("notes.mp3", b"not audio at all\n" * 100),
                                          ("blip.wav", wav_bytes(song(120, 0, True, 1.0)))])
def test_bad_file_shows_an_error_and_the_controls_keep_their_values(area, name, content):
    area.slider(key="w_tempo").set_value(150.0).run()
    before = shown(area)
    area.file_uploader(key="audio_upload").set_value((name, content, "audio/mpeg")).run()
    assert not area.exception
    assert any(name in as_read(e.value) and "keep their values" in e.value for e in area.error)
    assert shown(area) == before and not marks(area)


def test_predict_page_scores_the_measured_song(bundled):
    at = open_app(timeout=60)
    at.file_uploader(key="audio_upload").set_value(("demo.wav", SONG, "audio/wav")).run()
    assert not at.exception
    controls = {n: (v if n != "duration" else None) for n, v in shown(at).items()}
    controls["duration"] = analyse(SONG).values["duration"].value
    assert float(at.metric[0].value) == round(bundled.predict_song(dict(default_song(), **controls)).score, 1)
