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
* loudness: ITU-R BS.1770-4 integrated loudness (pyloudnorm), in LUFS;
* duration: decoded samples / sample rate, in milliseconds.

Only the first ``ANALYSE_SECONDS`` of a longer file are analysed (its duration is still the
whole file's). Problems raise ``AudioError`` with a one-line message for the user.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from virality.audio.decode import ANALYSE_SECONDS, AudioError, Decoded, decode
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
"""BPM searched; 250 is the model's highest valid tempo."""
MEASURED = ("tempo", "key", "mode", "loudness", "duration")
NOT_MEASURED = tuple(n for n in FEATURE_NAMES if n not in MEASURED)
# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@dataclass(frozen=True)
class Measurement:
    """One measured characteristic in Spotify units, with a confidence in [0, 1].

    ``alternatives``: other plausible values (tempo: half and double), each
    ``{"value": v, "support": s}`` with ``s`` on the confidence's scale.
    """

    value: float
    confidence: float
    method: str
    alternatives: tuple[dict, ...] = ()

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

    def song(self, base: dict[str, float]) -> dict[str, float]:
        """``base`` with the measured characteristics replaced (the rest keep their values)."""
        return {**base, **{name: m.value for name, m in self.values.items()}}

    def to_json(self) -> dict:
        """``{"tempo": {"value": v, "confidence": c, "alternatives": [...]}, …}`` — only the
        12 characteristic names as keys, so ``--song`` reads it back."""
        return {name: self.values[name].to_json() for name in MEASURED if name in self.values}


def measure_loudness(samples: np.ndarray, rate: int) -> Measurement:
    """ITU-R BS.1770-4 integrated loudness (LUFS) of ``samples`` ``(n, channels)``.

    Confidence 1: the value is exactly defined. Spotify's ``loudness`` (dB) comes from an
    unpublished Echo Nest model; both are full-scale-referenced averages of the whole track,
    but their offset could not be measured here (no audio of the training tracks).
    """
    import pyloudnorm

    channels = samples[:, :5]  # BS.1770 weights up to 5 channels; more are rare and ignored
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyloudnorm warns on clipping; the value still stands
        lufs = float(pyloudnorm.Meter(rate).integrated_loudness(channels))  # float32: same value, half the time
    if not math.isfinite(lufs) or lufs < SILENCE_LUFS:
        level = "no sound at all" if not math.isfinite(lufs) else f"{lufs:.0f} LUFS"
        raise AudioError(f"the audio is silent or almost silent ({level}); nothing to measure")
    feature = BY_NAME["loudness"]
    return Measurement(round(min(lufs, feature.high), 2), 1.0, "ITU-R BS.1770-4 integrated loudness (LUFS)")


def analysis_signal(samples: np.ndarray, rate: int) -> np.ndarray:
    """Mono mix ``(n,)`` float32 resampled to ``ANALYSIS_RATE``."""
    import soxr

    mono = samples.mean(axis=1, dtype=np.float32)
    if rate == ANALYSIS_RATE:
        return mono
    return soxr.resample(mono, rate, ANALYSIS_RATE, quality="HQ").astype(np.float32)


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
    bpm = _lag_to_bpm(lag)
    alternatives = tuple(
        {"value": round(bpm * factor, 2), "support": round(_clip01(_interp(r, _bpm_to_lag(bpm * factor))), 3)}
        for factor in (0.5, 2.0) if 0 < bpm * factor <= BY_NAME["tempo"].high
    )
    return Measurement(round(bpm, 2), _clip01(r[best]), "onset autocorrelation (pulse clarity)", alternatives)


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
    """
    if np.ptp(chroma) < 1e-9:
        raise AudioError("the audio has no pitched sound to measure a key from")
    r = key_correlations(chroma)
    mode, tonic = np.unravel_index(np.argmax(r), r.shape)
    best = r[mode, tonic]
    other_tonic = np.delete(r, tonic, axis=1).max()
    other_mode = r[1 - mode].max()
    method = "Krumhansl–Schmuckler key profiles (correlation margin)"
    return (Measurement(float(tonic), _clip01(best - other_tonic), method),
            Measurement(float(mode), _clip01(best - other_mode), method))


def measure_duration(file_seconds: float) -> Measurement:
    """Length in ms (confidence 1), capped at the model's 20-minute maximum."""
    feature = BY_NAME["duration"]
    return Measurement(float(min(round(file_seconds * 1000), feature.high)), 1.0, "decoded samples / sample rate")


def analyse(source: str | Path | bytes | BinaryIO, max_seconds: float = ANALYSE_SECONDS) -> AudioAnalysis:
    """Measure tempo, key, mode, loudness and duration of an audio file (path, bytes or file object).

    Raises ``AudioError`` (a ``ValueError``) with a plain message for unreadable, too short
    or silent audio.
    """
    decoded = decode(source, max_seconds)
    samples, rate = decoded.samples, decoded.sample_rate
    if decoded.damaged and decoded.file_seconds < MIN_SECONDS:
        raise AudioError(f"the file is damaged: only {decoded.file_seconds:.1f} s of its "
                         f"{decoded.declared_seconds:.1f} s could be decoded")
    if decoded.file_seconds < MIN_SECONDS:
        raise AudioError(f"the clip is only {decoded.file_seconds:.1f} s long; at least {MIN_SECONDS:.0f} s "
                         "of music are needed to measure tempo and key")
    if not np.all(np.isfinite(samples)):
        raise AudioError("the file is damaged: it decodes to invalid sample values")
    import librosa

    try:
        loudness = measure_loudness(samples, rate)
        mono = analysis_signal(samples, rate)
        tempo = measure_tempo(onset_envelope(mono))
        key, mode = measure_key(mean_chroma(mono))
    except librosa.util.exceptions.ParameterError as err:
        raise AudioError(f"the audio could not be analysed ({err})") from None
    analysis = AudioAnalysis(
        values={"tempo": tempo, "key": key, "mode": mode, "loudness": loudness,
                "duration": measure_duration(decoded.file_seconds)},
        file_seconds=decoded.file_seconds, analysed_seconds=len(samples) / rate,
        sample_rate=rate, channels=samples.shape[1])
    return _with_notes(analysis, decoded)


def _with_notes(analysis: AudioAnalysis, decoded: Decoded) -> AudioAnalysis:
    notes = []
    if decoded.damaged:
        notes.append(f"the file seems damaged: only {decoded.file_seconds:.1f} s of its "
                     f"{decoded.declared_seconds:.1f} s could be decoded, and only those were measured")
    if analysis.truncated:
        notes.append(f"only the first {analysis.analysed_seconds / 60:.0f} minutes of "
                     f"{analysis.file_seconds / 60:.1f} were analysed (the length is the whole file's)")
    if analysis.file_seconds * 1000 > BY_NAME["duration"].high:
        notes.append("the file is longer than the model's 20-minute maximum; its length is set to 20:00")
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
    return f"{text} ({confidence}{extra})"
