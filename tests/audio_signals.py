"""Synthetic audio whose truth is known by construction (used by the tests and benchmarks/audio.py).

Everything is generated with numpy, seeded; nothing is downloaded.
"""

from __future__ import annotations

import io

import numpy as np

RATE = 44100
MAJOR_TRIADS = ((0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7))   # I  IV V I
MINOR_TRIADS = ((0, 3, 7), (5, 8, 12), (7, 11, 14), (0, 3, 7))   # i  iv V i (harmonic minor)


def click_track(bpm: float, seconds: float = 20.0, rate: int = RATE, start: float = 0.1) -> np.ndarray:
    """Mono ``(n,)`` metronome: a 20 ms decaying 1 kHz click on every beat."""
    y = np.zeros(int(round(seconds * rate)), np.float32)
    n = int(0.02 * rate)
    click = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(n) / rate) * np.exp(-np.arange(n) / (0.003 * rate)))
    for t in np.arange(start, seconds - 0.03, 60.0 / bpm):
        i = int(round(t * rate))
        y[i:i + n] += click[: len(y) - i]
    return y


def pitch_hz(pitch_class: int, octave: int) -> float:
    """Equal-tempered frequency; A4 = 440 Hz, octave numbers as in scientific pitch notation."""
    return 440.0 * 2 ** ((pitch_class - 9) / 12 + octave - 4)


def _note(freqs: list[float], seconds: float, rate: int) -> np.ndarray:
    """Piano-like tones: four harmonics, 20 ms attack, exponential decay."""
    t = np.arange(int(round(seconds * rate))) / rate
    y = sum(0.6 ** h * np.sin(2 * np.pi * f * (h + 1) * t) for f in freqs for h in range(4))
    return y * np.minimum(1.0, t / 0.02) * np.exp(-t / 1.5)


def chord_progression(tonic: int, major: bool, seconds: float = 20.0, rate: int = RATE) -> np.ndarray:
    """Mono ``(n,)``: I–IV–V–I (major) or i–iv–V–i (minor) in ``tonic`` (0 = C), twice, peak 0.2."""
    triads = MAJOR_TRIADS if major else MINOR_TRIADS
    chords = []
    for k in range(8):
        intervals = triads[k % 4]
        freqs = [pitch_hz((tonic + i) % 12, 3 + (tonic + i) // 12) for i in intervals]
        if k % 4 in (0, 3):
            freqs.append(pitch_hz(tonic, 2))  # the bass doubles the tonic on the I chords
        chords.append(_note(freqs, seconds / 8, rate))
    y = np.concatenate(chords)
    n = int(round(seconds * rate))
    y = np.pad(y, (0, max(0, n - len(y))))[:n]
    return (0.2 * y / np.abs(y).max()).astype(np.float32)


def sine(freq: float, amplitude: float, seconds: float = 20.0, rate: int = RATE) -> np.ndarray:
    """Mono ``(n,)`` steady sine."""
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(int(round(seconds * rate))) / rate)).astype(np.float32)


def song(bpm: float, tonic: int, major: bool, seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Stereo ``(n, 2)`` song-like mix: chords, a click on every beat and a little noise."""
    rng = np.random.default_rng(seed)
    loop = chord_progression(tonic, major, seconds=min(seconds, 16.0), rate=rate)
    chords = np.tile(loop, int(np.ceil(seconds * rate / len(loop))))[: int(round(seconds * rate))]
    mono = chords + 0.8 * click_track(bpm, seconds, rate) + 0.01 * rng.standard_normal(len(chords))
    return np.stack([mono, 0.9 * mono], axis=1).astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int = RATE, fmt: str = "WAV") -> bytes:
    """Encode ``samples`` (``(n,)`` or ``(n, channels)``) as a WAV/FLAC/OGG file in memory."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt)
    return buffer.getvalue()


def white_noise(seconds: float = 20.0, rate: int = RATE, amplitude: float = 0.1, seed: int = 0) -> np.ndarray:
    """Mono ``(n,)`` Gaussian noise: no beat, no key."""
    return (amplitude * np.random.default_rng(seed).standard_normal(int(round(seconds * rate)))).astype(np.float32)


def surround(mono: np.ndarray, gains: tuple[float, ...], seed: int = 0, noise: float = 0.005) -> np.ndarray:
    """``(n, len(gains))``: ``mono`` at each channel's gain plus independent noise of RMS
    ``noise`` per channel, so the channels differ (for loudness meters and channel weights)."""
    rng = np.random.default_rng(seed)
    channels = [g * mono + noise * rng.standard_normal(len(mono)) for g in gains]
    return np.stack(channels, axis=1).astype(np.float32)


def write_in_blocks(path, samples: np.ndarray, rate: int, repeat: int, subtype: str = "PCM_16") -> None:
    """Write ``samples`` ``(n, channels)`` ``repeat`` times to one file, a copy at a time
    (a long multichannel file without holding it in memory)."""
    import soundfile as sf

    with sf.SoundFile(path, "w", rate, samples.shape[1], subtype) as handle:
        for _ in range(repeat):
            handle.write(samples)
