"""Audio analysis on signals whose truth is known by construction (tests/audio_signals.py)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from tests.audio_signals import RATE, chord_progression, click_track, sine, song, wav_bytes
from tests.cli import run
from virality.audio.analysis import MEASURED, NOT_MEASURED, analyse
from virality.audio.decode import AudioError
from virality.features import FEATURE_NAMES, default_song, load_song_arg

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg (installed by .ci/run) encodes the MP3")


def mp3_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    """Encode with ffmpeg's libmp3lame at 192 kbit/s, all in pipes."""
    out = subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "wav", "-i", "pipe:0", "-codec:a", "libmp3lame",
                          "-b:a", "192k", "-f", "mp3", "pipe:1"], input=wav_bytes(samples, rate),
                         capture_output=True, check=True)
    return out.stdout


def tempo_matches(measured, bpm: float, tolerance: float = 2.0) -> bool:
    """The estimate, or one of its reported half/double alternatives, is within ``tolerance``."""
    candidates = [measured.value] + [a["value"] for a in measured.alternatives]
    return any(abs(c - bpm) <= tolerance for c in candidates)


# ---------------------------------------------------------------- tempo

@pytest.mark.parametrize("bpm", [96, 120, 140, 200])
def test_click_track_tempo_within_2_bpm_or_as_half_double_alternative(bpm):
    tempo = analyse(wav_bytes(click_track(bpm))).values["tempo"]
    assert tempo_matches(tempo, bpm), tempo
    assert tempo.confidence > 0.5


@pytest.mark.parametrize("bpm", [96, 120, 140])
def test_common_tempi_are_the_estimate_itself(bpm):
    assert abs(analyse(wav_bytes(click_track(bpm))).values["tempo"].value - bpm) <= 2.0


def test_alternatives_are_half_and_double_within_the_valid_range():
    tempo = analyse(wav_bytes(click_track(140))).values["tempo"]
    values = [a["value"] for a in tempo.alternatives]
    assert values == [pytest.approx(tempo.value / 2, abs=0.01)]  # 280 BPM is beyond the 250 maximum
    assert all(0 <= a["support"] <= 1 for a in tempo.alternatives)


def test_noise_has_a_much_lower_tempo_confidence_than_a_click_track():
    noise = np.random.default_rng(0).normal(0, 0.1, RATE * 20).astype(np.float32)
    noisy = analyse(wav_bytes(noise)).values["tempo"]
    steady = analyse(wav_bytes(click_track(120))).values["tempo"]
    assert noisy.confidence < 0.3 < 0.9 < steady.confidence


# ---------------------------------------------------------------- key and mode

@pytest.mark.parametrize("tonic,major", [(0, True), (7, True), (10, True), (4, True),
                                         (9, False), (2, False), (11, False), (5, False)])
def test_chord_progression_key_and_mode(tonic, major):
    values = analyse(wav_bytes(chord_progression(tonic, major))).values
    assert (values["key"].value, values["mode"].value) == (tonic, 1.0 if major else 0.0)
    assert values["key"].confidence > 0 and values["mode"].confidence > 0


def test_key_is_transposition_invariant():
    """Shifting every pitch by a semitone shifts the measured key by one and keeps the confidence."""
    low = analyse(wav_bytes(chord_progression(3, False))).values
    high = analyse(wav_bytes(chord_progression(4, False))).values
    assert high["key"].value == (low["key"].value + 1) % 12
    assert high["key"].confidence == pytest.approx(low["key"].confidence, abs=0.05)


# ---------------------------------------------------------------- loudness and duration

@pytest.mark.parametrize("amplitude", [0.5, 0.1, 0.02])
def test_tone_loudness_within_1_db_of_bs1770(amplitude):
    stereo = np.stack([sine(997, amplitude)] * 2, axis=1)
    reference = pyloudnorm.Meter(RATE).integrated_loudness(stereo.astype(np.float64))
    measured = analyse(wav_bytes(stereo)).values["loudness"].value
    assert abs(measured - reference) <= 1.0
    # BS.1770's calibration: a 997 Hz sine of peak A in both channels of a stereo file reads 20·log10(A) LUFS
    assert measured == pytest.approx(20 * np.log10(amplitude), abs=0.2)


def test_loudness_follows_gain_exactly():
    base = chord_progression(0, True)
    quiet = analyse(wav_bytes(base)).values["loudness"].value
    loud = analyse(wav_bytes(base * 2.0)).values["loudness"].value
    assert loud - quiet == pytest.approx(20 * np.log10(2.0), abs=0.05)


@pytest.mark.parametrize("seconds,rate", [(17.5, 44100), (12.25, 22050), (31.0, 48000)])
def test_duration_is_exact(seconds, rate):
    y = chord_progression(2, True, seconds=seconds, rate=rate)
    assert analyse(wav_bytes(y, rate)).values["duration"].value == seconds * 1000


@pytest.mark.parametrize("fmt", ["FLAC", "OGG"])
def test_flac_and_ogg_give_the_wav_answers(fmt):
    y = song(120, 7, True, 20.0)
    reference = analyse(wav_bytes(y)).values
    other = analyse(wav_bytes(y, fmt=fmt)).values
    assert abs(other["tempo"].value - reference["tempo"].value) <= 1.0
    assert (other["key"].value, other["mode"].value) == (reference["key"].value, reference["mode"].value)
    assert abs(other["loudness"].value - reference["loudness"].value) <= 0.5
    assert other["duration"].value == reference["duration"].value


@needs_ffmpeg
def test_mp3_gives_the_wav_answers_within_tolerance():
    y = song(140, 9, False, 20.0)
    reference = analyse(wav_bytes(y)).values
    mp3 = analyse(mp3_bytes(y)).values
    assert tempo_matches(mp3["tempo"], 140) and abs(mp3["tempo"].value - reference["tempo"].value) <= 1.0
    assert (mp3["key"].value, mp3["mode"].value) == (9.0, 0.0) == (reference["key"].value, reference["mode"].value)
    assert abs(mp3["loudness"].value - reference["loudness"].value) <= 0.5
    assert abs(mp3["duration"].value - 20_000) <= 100  # encoder padding, at most a few MP3 frames


def test_only_the_first_minutes_are_analysed_and_the_length_is_the_whole_file():
    analysis = analyse(wav_bytes(song(120, 0, True, 25.0)), max_seconds=15.0)
    assert analysis.truncated and analysis.analysed_seconds == 15.0
    assert analysis.values["duration"].value == 25_000
    assert any("first" in note for note in analysis.notes)


def test_measured_song_keeps_the_users_other_values():
    analysis = analyse(wav_bytes(song(120, 0, True, 20.0)))
    base = dict(default_song(), danceability=0.91, valence=0.2)
    measured = analysis.song(base)
    assert {n for n in FEATURE_NAMES if measured[n] != base[n]} <= set(MEASURED)
    assert (measured["danceability"], measured["valence"]) == (0.91, 0.2)


# ---------------------------------------------------------------- bad input

def _corrupt_mp3() -> bytes:
    good = mp3_bytes(song(120, 0, True, 20.0))
    return good[:3000] + bytes(range(256)) * 200


@pytest.mark.parametrize("make,words", [
    (lambda: b"hello, this is not audio\n" * 200, "not an audio file"),
    (lambda: b"", "empty"),
    (lambda: wav_bytes(np.zeros(RATE * 20, np.float32)), "silent"),
    (lambda: wav_bytes(sine(440, 1e-5)), "silent"),
    (lambda: wav_bytes(chord_progression(0, True, seconds=1.0)), "only 1.0 s"),
    pytest.param(_corrupt_mp3, "damaged", marks=needs_ffmpeg),
])
def test_bad_input_raises_a_plain_audio_error(make, words):
    with pytest.raises(AudioError) as err:
        analyse(make())
    message = str(err.value)
    assert words in message and "\n" not in message and "Error" not in message


# ---------------------------------------------------------------- command line

@pytest.fixture
def song_wav(tmp_path):
    path = tmp_path / "song.wav"
    path.write_bytes(wav_bytes(song(128, 2, True, 20.0)))
    return path


def test_cli_json_is_keyed_by_characteristics_and_feeds_song(song_wav, tmp_path):
    done = run("features", str(song_wav), "--json")
    assert done.code == 0
    out, err = done.stdout, done.stderr
    payload = json.loads(out)
    assert list(payload) == list(MEASURED) and set(payload) <= set(FEATURE_NAMES)
    assert all(set(v) >= {"value", "confidence"} and 0 <= v["confidence"] <= 1 for v in payload.values())
    assert any(abs(a["value"] - 64) <= 2 for a in payload["tempo"]["alternatives"])
    assert all(name in err for name in NOT_MEASURED)
    (tmp_path / "measured.json").write_text(out)
    parsed, filled = load_song_arg(str(tmp_path / "measured.json"))
    assert filled == list(NOT_MEASURED)
    assert {n: parsed[n] for n in MEASURED} == {n: v["value"] for n, v in payload.items()}
    assert abs(parsed["tempo"] - 128) <= 2 and parsed["key"] == 2 and parsed["mode"] == 1


def test_cli_text_names_measured_and_unmeasured(song_wav):
    done = run("features", str(song_wav))
    assert done.code == 0
    out = done.stdout
    assert "BPM" in out and "LUFS" in out and "0:20" in out
    assert "not measured" in out and all(name in out for name in NOT_MEASURED)


@pytest.mark.parametrize("content,words", [(b"just text" * 100, "not an audio file"), (None, "not a readable file")])
def test_cli_bad_file_is_one_line_and_exit_2(tmp_path, content, words):
    path = tmp_path / "bad.mp3"
    if content is not None:
        path.write_bytes(content)
    done = run("features", str(path))
    assert done.code == 2
    out, err = done.stdout, done.stderr
    assert out == "" and err.startswith("error: ") and words in err and err.count("\n") == 1


def test_decoding_accepts_a_file_object():
    data = wav_bytes(click_track(120))
    assert analyse(io.BytesIO(data)).values["duration"].value == analyse(data).values["duration"].value
    assert sf.info(io.BytesIO(data)).frames == RATE * 20


@needs_ffmpeg
def test_long_mp3_keeps_the_length_its_header_declares():
    analysis = analyse(mp3_bytes(song(120, 0, True, 25.0)), max_seconds=15.0)
    assert analysis.truncated and abs(analysis.values["duration"].value - 25_000) <= 100
