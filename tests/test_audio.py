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

from tests.audio_signals import (
    RATE,
    chord_progression,
    click_track,
    sine,
    song,
    surround,
    wav_bytes,
    white_noise,
    write_in_blocks,
)
from tests.cli import run
from virality.audio.analysis import (
    KEY_MIN_FIT,
    MEASURED,
    NOT_MEASURED,
    SHORT_CLIP_SECONDS,
    TEMPO_RANGE,
    analyse,
    describe_measurement,
)
from virality.audio.decode import BLOCK_FRAMES, MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, AudioError, decode
from virality.audio.loudness import LoudnessMeter
from virality.cli import PATH_CHARS, main
from virality.features import FEATURE_NAMES, check_value, default_song, load_song_arg

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
    measured = analysis.song(base, names=MEASURED)
    assert {n for n in FEATURE_NAMES if measured[n] != base[n]} <= set(MEASURED)
    assert (measured["danceability"], measured["valence"]) == (0.91, 0.2)


# ---------------------------------------------------------------- what is applied by default

def test_a_clip_applies_tempo_key_mode_and_holds_back_loudness_and_its_length():
    analysis = analyse(wav_bytes(song(140, 9, False, 20.0)))  # A minor: key and mode differ from the typical song
    assert set(analysis.held_back()) == {"loudness", "duration"}
    assert "LUFS" in analysis.held_back()["loudness"] and "20 s" in analysis.held_back()["duration"]
    base = default_song()
    applied = analysis.song(base)
    assert {n for n in FEATURE_NAMES if applied[n] != base[n]} == {"tempo", "key", "mode"}
    assert (applied["loudness"], applied["duration"]) == (base["loudness"], base["duration"])


def test_a_song_length_file_applies_its_length():
    analysis = analyse(wav_bytes(song(128, 2, True, SHORT_CLIP_SECONDS + 2)))
    assert set(analysis.held_back()) == {"loudness"}
    assert analysis.song(default_song())["duration"] == (SHORT_CLIP_SECONDS + 2) * 1000


def test_noise_gives_an_uncertain_tempo_key_and_mode_that_are_not_applied():
    analysis = analyse(wav_bytes(white_noise()))
    for name in ("tempo", "key", "mode"):
        assert analysis.values[name].doubt, name
        assert name in analysis.held_back()
        assert "uncertain" in describe_measurement(name, analysis.values[name])
    assert "no key" in analysis.values["key"].doubt and f"< {KEY_MIN_FIT}" in analysis.values["key"].doubt
    assert analysis.song(default_song()) == dict(default_song())  # a 20 s clip of noise changes nothing


@pytest.mark.parametrize("tonic,major", [(0, True), (9, False), (6, True)])
def test_clear_progressions_are_certain(tonic, major):
    values = analyse(wav_bytes(chord_progression(tonic, major))).values
    assert not values["key"].doubt and not values["mode"].doubt


def test_a_lone_sine_has_a_key_but_no_certain_mode():
    """A single pitch fits its major and minor key almost equally: the mode is a near tie."""
    values = analyse(wav_bytes(sine(440, 0.3))).values
    assert "barely beats" in values["mode"].doubt and not values["key"].doubt and values["key"].value == 9


# ---------------------------------------------------------------- blockwise BS.1770 loudness

def _mixes(rate: int, seed: int) -> dict[str, np.ndarray]:
    """Mono, stereo and 5.1 (L R C LFE Ls Rs) programme with a quiet first third (the gates matter)."""
    mono = song(110, 4, True, 10.0, rate=rate, seed=seed)[:, 0]
    mono[: len(mono) // 3] *= 0.02
    return {"mono": mono[:, None], "stereo": surround(mono, (1.0, 0.7), seed),
            "5.1": surround(mono, (1.0, 0.8, 0.6, 0.9, 0.4, 0.3), seed)}


def _pyloudnorm(samples: np.ndarray, rate: int) -> float:
    """pyloudnorm's value; for 5.1 on its five channels L R C Ls Rs (it takes no LFE)."""
    if samples.shape[1] == 6:
        samples = samples[:, [0, 1, 2, 4, 5]]
    return pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64))


def _metered(samples: np.ndarray, rate: int, block: int) -> float:
    meter = LoudnessMeter(rate, samples.shape[1])
    for start in range(0, len(samples), block):
        meter.add(samples[start:start + block])
    return meter.integrated()


@pytest.mark.parametrize("rate", [44100, 96000])
@pytest.mark.parametrize("layout", ["mono", "stereo", "5.1"])
def test_blockwise_loudness_equals_pyloudnorm(rate, layout):
    samples = _mixes(rate, seed=rate)[layout]
    reference = _pyloudnorm(samples, rate)
    for block in (997, BLOCK_FRAMES):  # a block size that splits the 100 ms sub-blocks, and the decoder's
        assert abs(_metered(samples, rate, block) - reference) <= 0.1, (layout, rate, block)
    assert abs(analyse(wav_bytes(samples, rate)).values["loudness"].value - reference) <= 0.1


def test_long_digital_silence_between_sounds_gives_pyloudnorms_value():
    """Blocks of zeros after the filters have rung out are skipped, not filtered: same value."""
    rate = 48000
    samples = np.zeros((rate * 30, 2), np.float32)
    samples[rate * 2:rate * 7] = chord_progression(0, True, seconds=5.0, rate=rate)[:, None]
    samples[rate * 20:rate * 25] = 0.3 * sine(100, 0.5, seconds=5.0, rate=rate)[:, None]
    assert _metered(samples, rate, BLOCK_FRAMES) == pytest.approx(_pyloudnorm(samples, rate), abs=0.01)


def test_lfe_does_not_count_and_surrounds_weigh_1_41():
    def metered(gains):
        return _metered(surround(chord_progression(0, True), gains, noise=0), RATE, BLOCK_FRAMES)

    front = metered((1, 1, 1, 0, 0, 0))
    assert metered((1, 1, 1, 3, 0, 0)) == pytest.approx(front, abs=0.01)
    only_left, only_surround = metered((1, 0, 0, 0, 0, 0)), metered((0, 0, 0, 0, 1, 0))
    assert only_surround - only_left == pytest.approx(10 * np.log10(1.41), abs=0.05)


def test_a_constant_offset_is_silence_not_loudness():
    """A DC offset is inaudible: the meter starts in the steady state of the first sample, so a
    constant file has no start-up click of its own to measure (it measured −32 LUFS before)."""
    with pytest.raises(AudioError, match="silent"):
        analyse(wav_bytes(np.full(RATE * 20, 0.5, np.float32)))


# ---------------------------------------------------------------- limits and bounded memory

class _Recorder:
    def __init__(self, fmt):
        self.format, self.blocks = fmt, []

    def add(self, block):
        self.blocks.append(block.shape)


def test_files_are_decoded_in_bounded_blocks(tmp_path):
    path = tmp_path / "surround.wav"
    write_in_blocks(path, surround(chord_progression(0, True, seconds=5.0, rate=48000), (1,) * 8), 48000, repeat=2)
    sink, decoded = decode(path, _Recorder)
    assert sink.format.channels == 8 and decoded.analysed_seconds == 10.0
    assert max(n for n, _ in sink.blocks) <= BLOCK_FRAMES and sum(n for n, _ in sink.blocks) == 480_000


def test_a_high_rate_multichannel_file_is_analysed_in_bounded_memory(tmp_path):
    """30 s at 96 kHz × 8 channels is 92 MB as float32 (and twice that as float64, as decoded
    before): the analysis allocates a small fraction of it."""
    import tracemalloc

    path = tmp_path / "hires.flac"
    write_in_blocks(path, surround(song(120, 9, False, 10.0, rate=96000)[:, 0], (1, .9, .7, .3, .5, .5, .4, .4)),
                    96000, repeat=3)
    analyse(wav_bytes(click_track(120)))  # imports and JIT compilation outside the measurement
    tracemalloc.start()
    try:
        analysis = analyse(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (analysis.sample_rate, analysis.channels, analysis.analysed_seconds) == (96000, 8, 30.0)
    assert abs(analysis.values["tempo"].value - 120) <= 2 and analysis.values["key"].value == 9
    print(f"peak traced allocation {peak / 1e6:.1f} MB")
    assert peak < 40e6, peak


def _never_started(fmt):
    raise AssertionError(f"a sink was started for {fmt}")


@pytest.mark.parametrize("rate,channels,words", [
    (1, 1, f"at least {MIN_SAMPLE_RATE:,} Hz"),
    (4000, 2, f"at least {MIN_SAMPLE_RATE:,} Hz"),
    (384_000, 2, f"at most {MAX_SAMPLE_RATE:,} Hz"),
    (44100, 9, f"at most {MAX_CHANNELS}"),
])
def test_rate_and_channels_are_checked_from_the_header_before_decoding(rate, channels, words):
    data = wav_bytes(np.zeros((max(rate // 10, 20), channels), np.float32), rate)
    with pytest.raises(AudioError) as err:
        decode(data, _never_started)
    assert words in str(err.value) and f"{rate:,} Hz" in str(err.value) or f"{channels} channels" in str(err.value)
    with pytest.raises(AudioError, match=words):
        analyse(data)


def test_twenty_samples_at_1_hz_are_refused_not_measured(tmp_path, capsys):
    path = tmp_path / "tiny.wav"
    path.write_bytes(wav_bytes(np.random.default_rng(0).uniform(-0.5, 0.5, 20).astype(np.float32), rate=1))
    assert main(["features", str(path)]) == 2
    err = capsys.readouterr().err
    assert "1 Hz" in err and "8,000 Hz" in err and err.count("\n") == 1


# ---------------------------------------------------------------- every value within its valid range

HOSTILE = {
    "clicks at 300 BPM": lambda: click_track(300),
    "clicks at 20 BPM": lambda: click_track(20, seconds=30.0),
    "white noise": white_noise,
    "one impulse": lambda: np.pad(np.ones(1, np.float32), (RATE, RATE * 19)),
    "square wave at 8 kHz": lambda: np.sign(sine(50, 0.5, rate=8000)),
    "float samples far beyond full scale": lambda: 40 * song(120, 0, True, 20.0),
    "DC plus faint noise": lambda: 0.5 + white_noise(amplitude=1e-4),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_features_never_reports_a_value_outside_its_valid_range(name, tmp_path, capsys):
    samples = HOSTILE[name]()
    rate = 8000 if "8 kHz" in name else RATE
    path = tmp_path / "hostile.wav"
    path.write_bytes(wav_bytes(samples, rate) if "beyond" not in name else _float_wav(samples, rate))
    status = main(["features", str(path), "--json"])
    out, err = capsys.readouterr()
    if status == 2:  # refused: one plain line
        assert out == "" and err.startswith("error: ") and err.count("\n") == 1
        return
    payload = json.loads(out)
    for characteristic, measured in payload.items():
        check_value(characteristic, measured["value"])  # raises when out of range
    assert TEMPO_RANGE[0] <= payload["tempo"]["value"] <= TEMPO_RANGE[1]
    load_song_arg(out)  # and explain/whatif accept it as it is
    if "beyond" in name:
        assert payload["loudness"]["value"] == 5.0 and "capped" in err


def _float_wav(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def test_error_lines_quote_at_most_200_characters_of_a_path(tmp_path, capsys):
    long_name = str(tmp_path / ("x" * 150) / ("y" * 150) / "song.wav")
    assert main(["features", long_name]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < PATH_CHARS + 80 and "not a readable file" in err


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


@pytest.mark.slow
@needs_ffmpeg
def test_long_mp3_keeps_the_length_its_header_declares():
    analysis = analyse(mp3_bytes(song(120, 0, True, 25.0)), max_seconds=15.0)
    assert analysis.truncated and abs(analysis.values["duration"].value - 25_000) <= 100


@needs_ffmpeg
def test_what_libsndfile_cannot_open_is_streamed_through_ffmpeg_in_bounded_blocks(tmp_path):
    """AAC in MP4 (.m4a): libsndfile refuses it, ffmpeg decodes it block by block."""
    wav = tmp_path / "song.wav"
    wav.write_bytes(wav_bytes(song(120, 7, True, 20.0)))
    m4a = tmp_path / "song.m4a"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(wav), "-c:a", "aac", "-b:a", "192k", str(m4a)],
                   check=True)
    with pytest.raises(sf.LibsndfileError):
        sf.info(str(m4a))
    sink, decoded = decode(m4a, _Recorder)
    assert sink.format.channels == 2 and max(n for n, _ in sink.blocks) <= BLOCK_FRAMES
    assert abs(decoded.analysed_seconds - 20.0) <= 0.1
    reference, measured = analyse(wav).values, analyse(m4a.read_bytes()).values
    assert abs(measured["tempo"].value - reference["tempo"].value) <= 1.0
    assert (measured["key"].value, measured["mode"].value) == (7.0, 1.0)
    assert abs(measured["loudness"].value - reference["loudness"].value) <= 0.5
