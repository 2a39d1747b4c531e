"""Reading an audio file for analysis block by block, so memory stays bounded whatever the file.

soundfile (libsndfile: WAV, FLAC, OGG, MP3) reads it; audioread (ffmpeg) is the fallback for
what libsndfile cannot open or stops decoding half-way. The sample rate and channel count
are checked against ``MIN_SAMPLE_RATE``, ``MAX_SAMPLE_RATE`` and ``MAX_CHANNELS`` from the
header, before a single sample is decoded, and at most ``ANALYSE_SECONDS`` are read. Problems
raise ``AudioError`` with a one-line message for the user that names the limit.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

ANALYSE_SECONDS = 600.0
"""Only this much audio from the start of the file is analysed (10 minutes)."""
MIN_SAMPLE_RATE = 8000
"""Lowest sample rate accepted (Hz): telephone quality, the least that still holds a beat and a key."""
MAX_SAMPLE_RATE = 192_000
"""Highest sample rate accepted (Hz): the highest of studio and "hi-res" releases."""
MAX_CHANNELS = 8
"""Most channels accepted: 7.1 surround."""
BLOCK_FRAMES = 65_536
"""Frames decoded at a time: at the limits (192 kHz × 8 channels) a block is 2 MB of float32."""


class AudioError(ValueError):
    """The file cannot be analysed; the message is one plain sentence for the user."""


@dataclass(frozen=True)
class AudioFormat:
    """What the file's header says: sample rate (Hz), channels, and declared length (s, 0 if none)."""

    sample_rate: int
    channels: int
    declared_seconds: float = 0.0


@dataclass(frozen=True)
class Decoded:
    """How much was read: the analysed seconds and the whole file's length (s)."""

    format: AudioFormat
    analysed_seconds: float
    file_seconds: float

    @property
    def damaged(self) -> bool:
        """The header declares clearly more than could be decoded."""
        return self.format.declared_seconds > 1.1 * self.file_seconds + 0.5


class BlockSink(Protocol):
    """What consumes the decoded blocks (e.g. the loudness meter and the mono mix)."""

    def add(self, block: np.ndarray) -> None:
        """Take the next ``(frames, channels)`` float32 block in [-1, 1]."""


class _DecoderFailed(Exception):
    """The decoder (not the file's content) gave up: try the next one."""


def check_format(fmt: AudioFormat) -> None:
    """Refuse rates and channel counts outside the stated limits (before anything is decoded)."""
    if fmt.sample_rate < MIN_SAMPLE_RATE:
        raise AudioError(f"its sample rate is {fmt.sample_rate:,} Hz; at least {MIN_SAMPLE_RATE:,} Hz is needed "
                         "to measure tempo and key")
    if fmt.sample_rate > MAX_SAMPLE_RATE:
        raise AudioError(f"its sample rate is {fmt.sample_rate:,} Hz; at most {MAX_SAMPLE_RATE:,} Hz is accepted")
    if not 1 <= fmt.channels <= MAX_CHANNELS:
        raise AudioError(f"it has {fmt.channels} channels; at most {MAX_CHANNELS} (7.1 surround) are accepted")


def decode(source: str | Path | bytes | BinaryIO, start: Callable[[AudioFormat], BlockSink],
           max_seconds: float = ANALYSE_SECONDS) -> tuple[BlockSink, Decoded]:
    """Decode the first ``max_seconds`` of an audio file into a sink, block by block.

    ``start(format)`` is called once the header has passed ``check_format`` and returns the
    sink that receives every ``(≤ BLOCK_FRAMES, channels)`` float32 block in order. When
    libsndfile fails, ffmpeg decodes the file again into a fresh sink. Returns the sink and
    what was read.
    """
    data = _source_bytes(source)
    path = None if data is not None else Path(source)
    readers = (lambda: _soundfile_blocks(io.BytesIO(data) if data is not None else path),
               lambda: _audioread_blocks(data if data is not None else path))
    for reader in readers:
        try:
            return _feed(reader(), start, max_seconds)
        except _DecoderFailed:
            continue
    raise AudioError("this is not an audio file we can read (WAV, FLAC, OGG or MP3), or the file is damaged")


def _source_bytes(source: str | Path | bytes | BinaryIO) -> bytes | None:
    """The bytes of an in-memory source (None for a path); ``AudioError`` for an empty or unreadable one."""
    if isinstance(source, (str, Path)):
        try:
            path = Path(source)
            if not path.is_file():  # also refuses devices and FIFOs: only regular files are read
                raise AudioError("it is not a readable file")
            empty = path.stat().st_size == 0
        except OSError as err:  # a name too long for the system, a permission denied…
            raise AudioError(f"it cannot be read ({err.strerror or type(err).__name__})") from None
        if empty:
            raise AudioError("the file is empty")
        return None
    data = source if isinstance(source, bytes) else source.read()
    if len(data) == 0:
        raise AudioError("the file is empty")
    return data


def _feed(reader: contextlib.AbstractContextManager, start: Callable[[AudioFormat], BlockSink],
          max_seconds: float) -> tuple[BlockSink, Decoded]:
    """Run one decoder: check the format, then pass its blocks to a new sink."""
    with reader as (fmt, blocks):
        check_format(fmt)
        sink = start(fmt)
        limit = int(max_seconds * fmt.sample_rate)
        frames = 0
        for block in blocks(limit):
            sink.add(block)
            frames += len(block)
    if frames == 0:
        raise AudioError("the file contains no audio we can read (WAV, FLAC, OGG or MP3)")
    analysed = frames / fmt.sample_rate
    # A file shorter than the window was read to its end: its decoded length is the truth
    # (a truncated MP3 may declare more); a longer one keeps the length its header declares.
    file_seconds = analysed if frames < limit else max(fmt.declared_seconds, analysed)
    return sink, Decoded(fmt, analysed, file_seconds)


@contextlib.contextmanager
def _soundfile_blocks(source) -> Iterator[tuple[AudioFormat, Callable[[int], Iterator[np.ndarray]]]]:
    import soundfile as sf

    try:
        handle = sf.SoundFile(source)
    except Exception:  # noqa: BLE001 — libsndfile's errors are not for users; try the fallback
        raise _DecoderFailed from None
    with handle:
        rate = int(handle.samplerate)
        declared = handle.frames / rate if handle.frames > 0 and rate > 0 else 0.0
        fmt = AudioFormat(rate, int(handle.channels), declared)

        def blocks(limit: int) -> Iterator[np.ndarray]:
            read = 0
            while read < limit:
                try:
                    block = handle.read(min(BLOCK_FRAMES, limit - read), dtype="float32", always_2d=True)
                except Exception:  # noqa: BLE001 — damaged stream: let ffmpeg try from the start
                    raise _DecoderFailed from None
                if len(block) == 0:
                    return
                read += len(block)
                yield block

        yield fmt, blocks


@contextlib.contextmanager
def _audioread_blocks(source: bytes | Path) -> Iterator[tuple[AudioFormat, Callable[[int], Iterator[np.ndarray]]]]:
    """Fallback decoder (ffmpeg through audioread): 16-bit interleaved buffers → float32 blocks."""
    import audioread

    with contextlib.ExitStack() as stack:
        path = str(source) if isinstance(source, Path) else _temporary_copy(stack, source)
        try:
            handle = stack.enter_context(audioread.audio_open(path))
            fmt = AudioFormat(int(handle.samplerate), int(handle.channels), float(handle.duration or 0))
        except Exception:  # noqa: BLE001
            raise _DecoderFailed from None

        def blocks(limit: int) -> Iterator[np.ndarray]:
            channels, step = fmt.channels, BLOCK_FRAMES * fmt.channels
            buffers, read, pending, size = iter(handle), 0, [], 0   # ffmpeg's buffers are a few kB
            while True:
                try:
                    buffer = next(buffers, None)
                except Exception:  # noqa: BLE001
                    raise _DecoderFailed from None
                if buffer is not None:
                    pending.append(np.frombuffer(buffer, "<i2"))
                    size += len(pending[-1])
                    if size < step:
                        continue
                flat = np.concatenate(pending) if pending else np.zeros(0, "<i2")
                usable = len(flat) // channels * channels if buffer is None else len(flat) // step * step
                for begin in range(0, usable, step):
                    frames = min((min(usable, begin + step) - begin) // channels, limit - read)
                    yield flat[begin:begin + frames * channels].reshape(frames, channels).astype(np.float32) / 32768.0
                    read += frames
                    if read >= limit:
                        return
                if buffer is None:
                    return
                pending, size = [flat[usable:]], len(flat) - usable

        yield fmt, blocks


def _temporary_copy(stack: contextlib.ExitStack, data: bytes) -> str:
    """ffmpeg reads files: write ``data`` to a temporary file removed when ``stack`` closes."""
    tmp = stack.enter_context(tempfile.NamedTemporaryFile(suffix=".audio"))
    tmp.write(data)
    tmp.flush()
    return tmp.name


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
