"""Decoding an audio file for analysis: soundfile (libsndfile: WAV, FLAC, OGG, MP3), audioread
(ffmpeg) as a fallback. Problems raise ``AudioError`` with a one-line message for the user.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

ANALYSE_SECONDS = 600.0
"""Only this much audio from the start of the file is analysed (10 minutes)."""


class AudioError(ValueError):
    """The file cannot be analysed; the message is one plain sentence for the user."""


@dataclass(frozen=True)
class Decoded:
    """Samples ``(n, channels)`` float32 in [-1, 1] of the analysed part, and the whole file's length."""

    samples: np.ndarray
    sample_rate: int
    file_seconds: float
    declared_seconds: float = 0.0
    """The length the file's header declares (0 if none): more than was decoded means damage."""

    @property
    def damaged(self) -> bool:
        return self.declared_seconds > 1.1 * self.file_seconds + 0.5


def decode(source: str | Path | bytes | BinaryIO, max_seconds: float = ANALYSE_SECONDS) -> Decoded:
    """Decode the first ``max_seconds`` of an audio file (path, bytes or binary file object)."""
    data = source if isinstance(source, bytes) else None
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise AudioError(f"{path} is not a readable file")
        if path.stat().st_size == 0:
            raise AudioError(f"{path.name} is empty")
    elif not isinstance(source, bytes):
        data = source.read()
    if data is not None and len(data) == 0:
        raise AudioError("the file is empty")
    try:
        return _decode_soundfile(io.BytesIO(data) if data is not None else source, max_seconds)
    except AudioError:
        raise
    except Exception:  # noqa: BLE001 — libsndfile's errors are not for users; try the fallback
        return _decode_audioread(data if data is not None else Path(source), max_seconds)


def _decode_soundfile(source, max_seconds: float) -> Decoded:
    import soundfile as sf

    with sf.SoundFile(source) as handle:
        rate = int(handle.samplerate)
        limit = int(max_seconds * rate)
        samples = handle.read(frames=limit if handle.frames <= 0 else min(handle.frames, limit),
                              dtype="float32", always_2d=True)
        declared = handle.frames / rate if handle.frames > 0 else 0.0
    decoded_seconds = len(samples) / rate
    # A file shorter than the window was read to its end: its decoded length is the truth
    # (a truncated MP3 may declare more); a longer one keeps the length its header declares.
    file_seconds = decoded_seconds if len(samples) < limit else max(declared, decoded_seconds)
    return Decoded(samples, rate, file_seconds, declared)


def _decode_audioread(source: bytes | Path, max_seconds: float) -> Decoded:
    """Fallback decoder (ffmpeg through audioread) for what libsndfile cannot open."""
    import audioread

    with contextlib.ExitStack() as stack:
        if isinstance(source, bytes):
            tmp = stack.enter_context(tempfile.NamedTemporaryFile(suffix=".audio"))
            tmp.write(source)
            tmp.flush()
            path = tmp.name
        else:
            path = str(source)
        try:
            handle = stack.enter_context(audioread.audio_open(path))
            rate, channels, declared = int(handle.samplerate), int(handle.channels), float(handle.duration or 0)
            chunks, limit, total = [], int(max_seconds * rate) * channels, 0
            for buffer in handle:
                chunk = np.frombuffer(buffer, dtype="<i2")
                chunks.append(chunk)
                total += len(chunk)
                if total >= limit:
                    break
        except Exception:  # noqa: BLE001
            raise AudioError("this is not an audio file we can read (WAV, FLAC, OGG or MP3), "
                             "or the file is damaged") from None
    if total == 0 or channels == 0 or rate == 0:
        raise AudioError("the file contains no audio we can read (WAV, FLAC, OGG or MP3)")
    flat = np.concatenate(chunks)[:limit]
    samples = (flat[: len(flat) // channels * channels].reshape(-1, channels) / 32768.0).astype(np.float32)
    decoded_seconds = len(samples) / rate
    file_seconds = decoded_seconds if total < limit else max(declared, decoded_seconds)
    return Decoded(samples, rate, file_seconds, declared)


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence C libraries (mpg123 prints resync notes on damaged MP3s) writing to fd 2.

    For the command line only: it swaps the process-wide descriptor."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
