"""Measure a song's tempo, key, mode, loudness and length from its audio file.

Only what the signal defines is measured; the other seven characteristics (danceability,
energy, speechiness, acousticness, instrumentalness, liveness, valence) are outputs of
Spotify's own closed models, so they are left for the user (typical values) and never
guessed here.

* decoding: soundfile (libsndfile: WAV, FLAC, OGG, MP3), audioread (ffmpeg) as a fallback;
* tempo: autocorrelation of librosa's onset-strength envelope with librosa's tempo prior
  (log-normal around 120 BPM), the half and double tempo reported as alternatives;
* key and mode: mean chroma correlated with the 24 rotated Krumhansl–Kessler key profiles
  (the Krumhansl–Schmuckler algorithm);
* loudness: ITU-R BS.1770-4 integrated loudness (``virality.audio.loudness``, blockwise;
  equal to pyloudnorm's within 0.1 LU), in LUFS — not Spotify's dB;
* duration: decoded samples / sample rate, in milliseconds.

The file is read block by block (``virality.audio.decode``): loudness is metered at the
file's rate on every channel, and only a mono mix at ``ANALYSIS_RATE`` is kept for tempo and
key. Only the first ``ANALYSE_SECONDS`` of a longer file are analysed (its duration is still
the whole file's). Every value reported is inside its characteristic's valid range
(``virality.features``): tempo is clipped to ``TEMPO_RANGE``, loudness and length are capped
at the model's maximum (with a note), and what falls below a minimum (silence, a clip under
``MIN_SECONDS``) is refused. Problems raise ``AudioError`` with a one-line message.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from virality.audio.decode import ANALYSE_SECONDS, AudioError, AudioFormat, Decoded, decode
from virality.audio.loudness import LoudnessMeter
from virality.features import BY_NAME, FEATURE_NAMES, KEY_NAMES, MODE_NAMES

MIN_SECONDS = 10.0
"""Shortest clip accepted: the model's shortest valid length, and enough beats and chords."""
SILENCE_LUFS = -60.0
"""Quieter than this (the lowest loudness the model accepts) counts as silence."""
ANALYSIS_RATE = 11025
"""Tempo and key are measured on a mono mix resampled to this rate (Hz): fast, and enough
for kick/snare onsets and the pitches that define a key."""
HOP = 128
"""Onset envelope hop (samples at ``ANALYSIS_RATE``): 86 frames per second."""
SMOOTH_FRAMES = 5
"""Hann smoothing of the onset envelope before autocorrelation (frames, ~58 ms)."""
TEMPO_RANGE = (30.0, 250.0)
"""BPM searched and reported (a refined estimate beyond either end is clipped to it); 250 is
the model's highest valid tempo."""
TEMPO_MIN_CLARITY = 0.2
"""A tempo whose pulse clarity is below this is uncertain. White noise gives 0.08–0.11, the
synthetic click tracks 0.95–1.00 and the chord-and-click songs 0.79–0.94
(``python -m benchmarks.audio``)."""
KEY_MIN_FIT = 0.5
"""A key (and its mode) is uncertain when the pitch profile correlates less than this with
every key profile: white noise gives 0.27–0.32, the 24 synthetic chord progressions
0.85–0.91 (``python -m benchmarks.audio``). Noise's margins (0.07–0.12) are not near 0, so
the margin alone could not tell it from music."""
KEY_MIN_MARGIN = 0.05
"""…or when the best key (mode) beats the runner-up by less than this: a near tie. The
synthetic progressions' margins are 0.16–0.35; a lone sine, which has no mode, has a mode
margin below it (tests/test_audio.py)."""
SHORT_CLIP_SECONDS = 60.0
"""A file shorter than this is probably a clip of a song (a TikTok sound is 15–60 s), not the
whole song: its length is offered, not applied by default."""
MEASURED = ("tempo", "key", "mode", "loudness", "duration")
NOT_MEASURED = tuple(n for n in FEATURE_NAMES if n not in MEASURED)
# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class Measurement:
    """One measured characteristic in Spotify units, with a confidence in [0, 1].

    ``alternatives``: other plausible values (tempo: half and double), each
    ``{"value": v, "support": s}`` with ``s`` on the confidence's scale. ``doubt``: why the
    value is uncertain (empty when it is not); an uncertain value is shown, not applied.
    """

    value: float
    confidence: float
    method: str
    alternatives: tuple[dict, ...] = ()
    doubt: str = ""

    def to_json(self) -> dict:
        out = {"value": self.value, "confidence": round(self.confidence, 3)}
        if self.alternatives:
            out["alternatives"] = [dict(a) for a in self.alternatives]
        return out


@dataclass(frozen=True)
class AudioAnalysis:
    """What was measured from one file. ``values`` holds only the measured characteristics."""

    values: dict[str, Measurement]
    file_seconds: float
    analysed_seconds: float
    sample_rate: int
    channels: int
    notes: tuple[str, ...] = field(default=())

    @property
    def truncated(self) -> bool:
        return self.analysed_seconds < self.file_seconds - 0.5

    def held_back(self) -> dict[str, str]:
        """``{name: why}`` for the measured values that are shown but not applied unless the
        user asks: loudness (LUFS, not Spotify's dB), an uncertain tempo, key or mode, and
        the length of a clip shorter than ``SHORT_CLIP_SECONDS``."""
        why = {name: m.doubt for name, m in self.values.items() if m.doubt}
        if "loudness" in self.values:
            why["loudness"] = ("it is integrated loudness in LUFS (ITU-R BS.1770), not Spotify's loudness in dB; "
                               "how the two relate could not be measured here")
        if "duration" in self.values and self.file_seconds < SHORT_CLIP_SECONDS:
            why["duration"] = (f"the file is {self.file_seconds:.0f} s long: a clip of the song, "
                               "or the whole song?")
        return why

    def song(self, base: dict[str, float], names: Iterable[str] | None = None) -> dict[str, float]:
        """``base`` with the measured values of ``names`` replaced (default: every measured value
        not ``held_back``); the other characteristics keep their values."""
        if names is None:
            names = [n for n in self.values if n not in self.held_back()]
        return {**base, **{name: self.values[name].value for name in names}}

    def to_json(self) -> dict:
        """``{"tempo": {"value": v, "confidence": c, "alternatives": [...]}, …}`` — only the
        12 characteristic names as keys, so ``--song`` reads it back."""
        return {name: self.values[name].to_json() for name in MEASURED if name in self.values}


def measure_loudness(lufs: float) -> Measurement:
    """The BS.1770-4 integrated loudness ``lufs`` (from ``LoudnessMeter``) as a measurement.

    Confidence 1: the value is exactly defined. It is in LUFS, not Spotify's ``loudness`` dB
    (an unpublished Echo Nest model): both are full-scale-referenced averages of the whole
    track, but their relation could not be measured here (no audio of the training tracks),
    so the page shows it beside the control and does not apply it unless asked.
    Silence (below ``SILENCE_LUFS``) is refused; above the model's maximum it is capped.
    """
    if not math.isfinite(lufs) or lufs < SILENCE_LUFS:
        level = "no sound at all" if not math.isfinite(lufs) else f"{lufs:.0f} LUFS"
        raise AudioError(f"the audio is silent or almost silent ({level}); nothing to measure")
    feature = BY_NAME["loudness"]
    return Measurement(round(min(lufs, feature.high), 2), 1.0, "ITU-R BS.1770-4 integrated loudness (LUFS)")


def mono_mix(block: np.ndarray) -> np.ndarray:
    """The mean of the channels of ``block`` ``(frames, channels)``: ``(frames,)`` float32.

    Summed a column at a time: several times faster than ``mean(axis=1)`` on a few channels."""
    mono = block[:, 0].astype(np.float32)
    for channel in range(1, block.shape[1]):
        mono += block[:, channel]
    if block.shape[1] > 1:
        mono *= np.float32(1 / block.shape[1])
    return mono


class AnalysisSink:
    """Takes the decoded blocks: checks them, meters their loudness at the file's rate and
    keeps only their mono mix at ``ANALYSIS_RATE`` (float32, 44 kB a second of audio)."""

    def __init__(self, fmt: AudioFormat):
        import soxr

        self.loudness = LoudnessMeter(fmt.sample_rate, fmt.channels)
        self.resampler = None if fmt.sample_rate == ANALYSIS_RATE else soxr.ResampleStream(
            fmt.sample_rate, ANALYSIS_RATE, 1, dtype="float32", quality="HQ")
        self.mono: list[np.ndarray] = []

    def add(self, block: np.ndarray) -> None:
        mono = mono_mix(block)
        if not np.isfinite(mono).all():  # a NaN or inf in any channel reaches the mix
            raise AudioError("the file is damaged: it decodes to invalid sample values")
        self.loudness.add(block)
        self.mono.append(mono if self.resampler is None else self.resampler.resample_chunk(mono))

    def analysis_signal(self) -> np.ndarray:
        """The mono mix ``(n,)`` float32 at ``ANALYSIS_RATE`` of everything added."""
        if self.resampler is not None:
            self.mono.append(self.resampler.resample_chunk(np.zeros(0, np.float32), last=True))
            self.resampler = None
        return np.concatenate(self.mono) if self.mono else np.zeros(0, np.float32)


def onset_envelope(mono: np.ndarray) -> np.ndarray:
    """librosa's spectral-flux onset strength ``(frames,)`` at ``ANALYSIS_RATE / HOP`` frames/s."""
    import librosa

    return librosa.onset.onset_strength(y=mono, sr=ANALYSIS_RATE, hop_length=HOP, n_fft=1024, n_mels=64)


def _lag_to_bpm(lag: float) -> float:
    return 60.0 * ANALYSIS_RATE / HOP / lag


def _bpm_to_lag(bpm: float) -> float:
    return 60.0 * ANALYSIS_RATE / HOP / bpm


def tempo_prior(bpm: np.ndarray, centre: float = 120.0, octaves: float = 1.0) -> np.ndarray:
    """librosa's default tempo prior: log-normal around 120 BPM with a one-octave deviation."""
    return np.exp(-0.5 * ((np.log2(bpm) - np.log2(centre)) / octaves) ** 2)


def measure_tempo(envelope: np.ndarray) -> Measurement:
    """Tempo (BPM) from the onset envelope's autocorrelation.

    The autocorrelation ``r(lag)`` (mean removed, 1 at lag 0, unbiased) measures how strongly
    the onsets repeat at each beat period. The estimate maximises ``r × prior`` over
    ``TEMPO_RANGE``, refined to a fraction of a frame by a parabola through the peak.
    Confidence = ``r`` at the chosen period (pulse clarity: 1 for a metronome, about 0 for
    noise). Half and double the tempo are returned as alternatives with their own ``r``, so
    the metrical-level ambiguity is reported rather than hidden.
    """
    import librosa

    # Onset peaks are a frame or two wide: smoothing lets a beat period that falls between two
    # frame lags (150 BPM = 34.45 frames) score as high as one that falls on a whole lag.
    window = np.hanning(SMOOTH_FRAMES + 2)[1:-1]
    env = np.convolve(envelope - envelope.mean(), window / window.sum(), mode="same")
    max_lag = int(math.ceil(_bpm_to_lag(TEMPO_RANGE[0]))) + 2
    if len(env) < 2 * max_lag or not np.any(env):
        raise AudioError("the audio has no onsets to measure a tempo from")
    r = librosa.autocorrelate(env, max_size=max_lag + 1)
    r = r / r[0] * len(env) / (len(env) - np.arange(len(r)))
    lags = np.arange(int(math.floor(_bpm_to_lag(TEMPO_RANGE[1]))), max_lag)
    best = int(lags[np.argmax(r[lags] * tempo_prior(_lag_to_bpm(lags)))])
    lag = best + _parabola_offset(r[best - 1], r[best], r[best + 1])
    bpm = float(np.clip(_lag_to_bpm(lag), *TEMPO_RANGE))  # the search's end lags can refine past 250
    alternatives = tuple(
        {"value": round(bpm * factor, 2), "support": round(_clip01(_interp(r, _bpm_to_lag(bpm * factor))), 3)}
        for factor in (0.5, 2.0) if 0 < bpm * factor <= BY_NAME["tempo"].high
    )
    clarity = _clip01(r[best])
    doubt = f"no clear beat (pulse clarity {clarity:.2f} < {TEMPO_MIN_CLARITY})" if clarity < TEMPO_MIN_CLARITY else ""
    return Measurement(round(bpm, 2), clarity, "onset autocorrelation (pulse clarity)", alternatives, doubt)


def _parabola_offset(left: float, centre: float, right: float) -> float:
    """Offset in (-0.5, 0.5) of the vertex of the parabola through three equally spaced points."""
    denominator = left - 2 * centre + right
    if denominator >= 0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / denominator, -0.5, 0.5))


def _interp(values: np.ndarray, position: float) -> float:
    if position < 0 or position > len(values) - 1:
        return 0.0
    return float(np.interp(position, np.arange(len(values)), values))


def _clip01(value: float) -> float:
    return float(min(max(value, 0.0), 1.0))


def mean_chroma(mono: np.ndarray) -> np.ndarray:
    """Pitch-class profile ``(12,)`` (C first): chroma of the frames with sound, averaged."""
    import librosa

    power = np.abs(librosa.stft(mono, n_fft=4096, hop_length=2048)) ** 2
    energy = power.sum(axis=0)
    voiced = energy > 1e-3 * max(float(np.median(energy)), 1e-12)
    if not voiced.any():
        raise AudioError("the audio has no pitched sound to measure a key from")
    chroma = librosa.feature.chroma_stft(S=power[:, voiced], sr=ANALYSIS_RATE, n_fft=4096, tuning=0.0)
    return chroma.mean(axis=1)


def key_correlations(chroma: np.ndarray) -> np.ndarray:
    """Pearson correlation ``(2, 12)`` of ``chroma`` with the major (row 1) and minor (row 0)
    profiles rotated to each tonic 0 (C) … 11 (B)."""
    out = np.zeros((2, 12))
    for mode, profile in ((1, MAJOR_PROFILE), (0, MINOR_PROFILE)):
        for tonic in range(12):
            out[mode, tonic] = np.corrcoef(chroma, np.roll(profile, tonic))[0, 1]
    return np.nan_to_num(out, nan=-1.0)


def measure_key(chroma: np.ndarray) -> tuple[Measurement, Measurement]:
    """Key (pitch class) and mode (1 major / 0 minor) by the Krumhansl–Schmuckler algorithm.

    Confidences are correlation margins: key = best correlation − best with another tonic;
    mode = best − best of the other mode. A margin is 0 for a tie and rarely above 0.5.
    Either is uncertain below ``KEY_MIN_MARGIN``, and both when even the best correlation
    is below ``KEY_MIN_FIT`` (the sound resembles no key: noise, drums alone).
    """
    if np.ptp(chroma) < 1e-9:
        raise AudioError("the audio has no pitched sound to measure a key from")
    r = key_correlations(chroma)
    mode, tonic = np.unravel_index(np.argmax(r), r.shape)
    best = r[mode, tonic]
    key_margin = _clip01(best - np.delete(r, tonic, axis=1).max())
    mode_margin = _clip01(best - r[1 - mode].max())
    method = "Krumhansl–Schmuckler key profiles (correlation margin)"
    no_fit = f"the sound matches no key well (best correlation {best:.2f} < {KEY_MIN_FIT})" if best < KEY_MIN_FIT else ""
    return (Measurement(float(tonic), key_margin, method, doubt=no_fit or _tie(key_margin, "key")),
            Measurement(float(mode), mode_margin, method, doubt=no_fit or _tie(mode_margin, "mode")))


def _tie(margin: float, what: str) -> str:
    """Why a near-tie margin is uncertain, or ``""``."""
    if margin >= KEY_MIN_MARGIN:
        return ""
    return f"the best {what} barely beats the runner-up (margin {margin:.2f} < {KEY_MIN_MARGIN})"


def measure_duration(file_seconds: float) -> Measurement:
    """Length in ms (confidence 1), capped at the model's 20-minute maximum."""
    feature = BY_NAME["duration"]
    return Measurement(float(min(round(file_seconds * 1000), feature.high)), 1.0, "decoded samples / sample rate")


def analyse(source: str | Path | bytes | BinaryIO, max_seconds: float = ANALYSE_SECONDS) -> AudioAnalysis:
    """Measure tempo, key, mode, loudness and duration of an audio file (path, bytes or file object).

    The file is decoded block by block (``decode``): memory stays bounded by the limits in
    ``virality.audio.decode`` whatever its rate, channels and length. Raises ``AudioError``
    (a ``ValueError``) with a plain message for unreadable, out-of-limits, too short or
    silent audio.
    """
    sink, decoded = decode(source, AnalysisSink, max_seconds)
    if decoded.damaged and decoded.file_seconds < MIN_SECONDS:
        raise AudioError(f"the file is damaged: only {decoded.file_seconds:.1f} s of its "
                         f"{decoded.format.declared_seconds:.1f} s could be decoded")
    if decoded.file_seconds < MIN_SECONDS:
        raise AudioError(f"the clip is only {decoded.file_seconds:.1f} s long; at least {MIN_SECONDS:.0f} s "
                         "of music are needed to measure tempo and key")
    import librosa

    lufs = sink.loudness.integrated()
    try:
        loudness = measure_loudness(lufs)
        mono = sink.analysis_signal()
        tempo = measure_tempo(onset_envelope(mono))
        key, mode = measure_key(mean_chroma(mono))
    except librosa.util.exceptions.ParameterError as err:
        raise AudioError(f"the audio could not be analysed ({err})") from None
    analysis = AudioAnalysis(
        values={"tempo": tempo, "key": key, "mode": mode, "loudness": loudness,
                "duration": measure_duration(decoded.file_seconds)},
        file_seconds=decoded.file_seconds, analysed_seconds=decoded.analysed_seconds,
        sample_rate=decoded.format.sample_rate, channels=decoded.format.channels)
    return _with_notes(analysis, decoded, lufs)


def _with_notes(analysis: AudioAnalysis, decoded: Decoded, lufs: float) -> AudioAnalysis:
    notes = []
    if decoded.damaged:
        notes.append(f"the file seems damaged: only {decoded.file_seconds:.1f} s of its "
                     f"{decoded.format.declared_seconds:.1f} s could be decoded, and only those were measured")
    if analysis.truncated:
        notes.append(f"only the first {analysis.analysed_seconds / 60:.0f} minutes of "
                     f"{analysis.file_seconds / 60:.1f} were analysed (the length is the whole file's)")
    if analysis.file_seconds * 1000 > BY_NAME["duration"].high:
        notes.append("the file is longer than the model's 20-minute maximum; its length is set to 20:00")
    if lufs > BY_NAME["loudness"].high:
        notes.append(f"its loudness, {lufs:+.1f} LUFS, is above anything a real master reaches (samples beyond "
                     f"full scale); it is capped at the model's maximum, {BY_NAME['loudness'].high:+.0f}")
    return AudioAnalysis(analysis.values, analysis.file_seconds, analysis.analysed_seconds,
                         analysis.sample_rate, analysis.channels, tuple(notes))


def describe_measurement(name: str, m: Measurement) -> str:
    """``"128 BPM (confidence 0.82; half 64 BPM 0.79)"`` — one measured value in user units."""
    feature = BY_NAME[name]
    if name == "mode":
        text = MODE_NAMES[int(m.value)]
    elif name == "key":
        text = KEY_NAMES[int(m.value)]
    elif name == "tempo":
        text = f"{m.value:.1f} BPM"
    else:
        text = feature.format(m.value)
    if name == "loudness":
        text = f"{m.value:.1f} LUFS"
    confidence = "exact" if name in ("duration", "loudness") else f"confidence {m.confidence:.2f}"
    extra = "".join(f"; {'half' if a['value'] < m.value else 'double'} {a['value']:.1f} BPM "
                    f"(support {a['support']:.2f})" for a in m.alternatives)
    doubt = f"; uncertain: {m.doubt}" if m.doubt else ""
    return f"{text} ({confidence}{extra}{doubt})"
