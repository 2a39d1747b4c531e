"""The "Start from an audio file" box: measured values fill the controls, errors keep them."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import as_read, open_app, predict_score
from tests.audio_signals import song, wav_bytes, white_noise
from virality.audio.analysis import SHORT_CLIP_SECONDS, analyse
from virality.features import BY_NAME, default_song, format_duration, parse_duration

SONG = wav_bytes(song(128, 2, False, 20.0))   # a 20 s clip in D minor: tempo, key and mode are clear
APPLIED = ("tempo", "key", "mode")
HELD_BACK = ("loudness", "duration")          # LUFS is not Spotify's dB; a clip's length is not the song's


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


def not_applied(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if "not applied" in c.value and "measured" in c.value]


def upload(at: AppTest, content: bytes = SONG, name: str = "demo.wav") -> AppTest:
    at.file_uploader(key="audio_upload").set_value((name, content, "audio/wav")).run()
    assert not at.exception
    return at


def test_upload_fills_tempo_key_mode_and_keeps_everything_else(area):
    area.slider(key="w_danceability").set_value(0.9).run()
    before = shown(area)
    upload(area)
    truth = {name: m.value for name, m in analyse(SONG).values.items()}
    after = shown(area)
    assert {n: after[n] for n in APPLIED} == expected_controls({n: truth[n] for n in APPLIED})
    assert {n: v for n, v in after.items() if n not in APPLIED} == {n: v for n, v in before.items() if n not in APPLIED}
    assert after["danceability"] == 0.9
    assert len(marks(area)) == len(APPLIED)
    assert len(area.get("audio")) == 1  # played back
    assert any("Measured from **demo.wav**" in as_read(m.value) for m in area.markdown)


def test_measured_loudness_is_shown_in_lufs_under_its_control_and_applied_only_when_asked(area):
    upload(area)
    lufs = analyse(SONG).values["loudness"].value
    assert area.slider(key="w_loudness").value == default_song()["loudness"]
    assert any(f"{lufs:.1f} LUFS" in c and "not Spotify's dB" in c for c in not_applied(area))
    button = area.button(key="use_audio_loudness")
    assert "LUFS" in button.label
    button.click().run()
    assert area.slider(key="w_loudness").value == BY_NAME["loudness"].snap(lufs)
    assert any("LUFS" in c for c in marks(area))


def test_a_short_clip_asks_before_its_length_becomes_the_songs(area):
    upload(area)
    assert area.text_input(key="w_duration").value == format_duration(default_song()["duration"])
    assert any("Is that the whole song?" in i.value for i in area.info)
    assert any("0:20" in c for c in not_applied(area))
    area.button(key="use_audio_duration").click().run()
    assert area.text_input(key="w_duration").value == "0:20"
    assert not any("Is that the whole song?" in i.value for i in area.info)


def test_a_song_length_file_sets_the_length_without_asking(area):
    seconds = SHORT_CLIP_SECONDS + 5
    upload(area, wav_bytes(song(128, 2, False, seconds)))
    assert area.text_input(key="w_duration").value == format_duration(seconds * 1000)
    assert not any("whole song" in i.value for i in area.info)


def test_an_uncertain_key_and_mode_are_shown_but_not_applied(area):
    area.selectbox(key="w_key").set_value(3).run()
    upload(area, wav_bytes(white_noise()), "noise.wav")
    assert (area.selectbox(key="w_key").value, area.radio(key="w_mode").value) == (3, 1)
    assert sum("uncertain" in c for c in not_applied(area)) >= 2  # key, mode (and the tempo)
    assert any("uncertain" in m.value for m in area.markdown)
    area.button(key="use_audio_key").click().run()
    assert area.selectbox(key="w_key").value == int(analyse(wav_bytes(white_noise())).values["key"].value)


def test_moving_a_measured_control_removes_only_its_mark_and_sticks(area):
    upload(area)
    area.slider(key="w_tempo").set_value(90.0).run()
    assert len(marks(area)) == len(APPLIED) - 1
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
    assert len(area.get("audio")) == 0  # no player for a file that could not be decoded


def test_predict_page_scores_the_measured_song_with_the_typical_loudness_and_length(bundled):
    """A 20 s upload changes the score only through tempo, key and mode (before, its LUFS and
    its 20 s length moved the typical song's score from 52.3 to 25.7)."""
    at = upload(open_app(timeout=60))
    controls = dict(shown(at), duration=parse_duration(shown(at)["duration"]))
    measured = {n: m.value for n, m in analyse(SONG).values.items() if n in APPLIED}
    expected = dict(default_song(), **{n: BY_NAME[n].snap(v) for n, v in measured.items()})
    assert controls == expected
    assert predict_score(at) == round(bundled.predict_song(expected).score, 1)
