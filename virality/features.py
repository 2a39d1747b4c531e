"""The one source of truth for the 12 audio characteristics.

The sliders, the CSV/JSON validation, the model's input order and the explanations all read
``FEATURES``. Values are always held in Spotify's units: ratios 0–1, loudness in dB, tempo in
BPM, key as pitch class 0–11 (C=0), mode 1 = major / 0 = minor, duration in milliseconds.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEY_NAMES = ("C", "C♯/D♭", "D", "D♯/E♭", "E", "F", "F♯/G♭", "G", "G♯/A♭", "A", "A♯/B♭", "B")
MODE_NAMES = {1: "major", 0: "minor"}


@dataclass(frozen=True)
class Feature:
    """One audio characteristic.

    ``low``/``high`` are the *physical* valid range (every real track must fit), not the
    range of the training file. ``default`` is the median of the training tracks.
    ``kind`` is one of ``"ratio"``, ``"number"``, ``"key"``, ``"mode"``, ``"duration"``.
    """

    name: str
    label: str
    unit: str
    low: float
    high: float
    step: float
    default: float
    help: str
    kind: str = "ratio"
    value_format: str = "%.2f"  # printf-style value in its unit: the sliders' labels and ``format``

    @property
    def is_discrete(self) -> bool:
        return self.kind in ("key", "mode")

    def format(self, value: float) -> str:
        """Render ``value`` in the user's units, e.g. ``"128 BPM"``, ``"F♯/G♭"``, ``"3:05"``."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—"
        if self.kind == "key":
            return KEY_NAMES[int(round(value)) % 12]
        if self.kind == "mode":
            return MODE_NAMES[1 if value >= 0.5 else 0]
        if self.kind == "duration":
            return format_duration(value)
        text, zero = self.value_format % value, self.value_format % 0.0
        return zero if text.lstrip("-") == zero else text  # never "-0.0 dB"

    def snap(self, value: float) -> float:
        """Round ``value`` to the slider step and clip it into the valid range."""
        value = min(max(float(value), self.low), self.high)
        if self.kind == "key":
            return float(int(round(value)) % 12)
        snapped = round(round((value - self.low) / self.step) * self.step + self.low, 6)
        return min(max(snapped, self.low), self.high)


FEATURES: tuple[Feature, ...] = (
    Feature("danceability", "Danceability", "0–1", 0.0, 1.0, 0.01, 0.74,
            "How suitable the track is for dancing: steady beat, strong rhythm, regular tempo."),
    Feature("energy", "Energy", "0–1", 0.0, 1.0, 0.01, 0.64,
            "How intense and active it feels: loud, fast, noisy tracks score high; "
            "a soft ballad scores low."),
    Feature("key", "Key", "note", 0, 11, 1, 5,
            "The song's home note (tonic), C to B.", kind="key"),
    Feature("loudness", "Loudness", "dB", -60.0, 5.0, 0.1, -6.5,
            "Average loudness of the master in decibels; most released pop sits "
            "between −9 and −4 dB.", kind="number", value_format="%.1f dB"),
    Feature("mode", "Mode", "major/minor", 0, 1, 1, 1,
            "Major (brighter) or minor (darker) tonality.", kind="mode"),
    Feature("speechiness", "Speechiness", "0–1", 0.0, 1.0, 0.01, 0.08,
            "How much of the track is spoken words: rap verses push it up, "
            "sung melodies keep it low."),
    Feature("acousticness", "Acousticness", "0–1", 0.0, 1.0, 0.01, 0.12,
            "Confidence the track is acoustic (guitars, piano, voice) rather than "
            "electronic or heavily produced."),
    Feature("instrumentalness", "Instrumentalness", "0–1", 0.0, 1.0, 0.01, 0.0,
            "How likely the track has no vocals; above 0.5 usually means instrumental."),
    Feature("liveness", "Liveness", "0–1", 0.0, 1.0, 0.01, 0.12,
            "How much it sounds like a live recording (audience, room); above 0.8 "
            "is probably live."),
    Feature("valence", "Valence", "0–1", 0.0, 1.0, 0.01, 0.53,
            "Musical positiveness: high sounds happy or euphoric, low sounds sad, "
            "tense or angry."),
    Feature("tempo", "Tempo", "BPM", 0.0, 250.0, 1.0, 122.0,
            "Speed of the beat in beats per minute (0 means no steady beat was "
            "detected).", kind="number", value_format="%.0f BPM"),
    Feature("duration", "Length", "m:ss", 10_000, 1_200_000, 1000, 186_000,
            "Length of the track, entered as minutes:seconds; stored in milliseconds.",
            kind="duration"),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
N_FEATURES = len(FEATURES)
# positions in FEATURE_NAMES (model order): the 10 continuous characteristics, key and mode
CONTINUOUS: tuple[int, ...] = tuple(i for i, f in enumerate(FEATURES) if not f.is_discrete)
DISCRETE: tuple[int, ...] = tuple(i for i, f in enumerate(FEATURES) if f.is_discrete)
KEY_INDEX, MODE_INDEX = FEATURE_NAMES.index("key"), FEATURE_NAMES.index("mode")


def shown(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, so a hostile 1 MB value keeps messages short."""
    try:
        text = repr(value)
    except ValueError:  # an int with more digits than Python will print
        text = f"<{type(value).__name__} too long to show>"
    return text if len(text) <= limit else text[:limit - 1] + "…"


def format_duration(ms: float) -> str:
    """``185000`` → ``"3:05"`` (minutes:seconds, rounded to the nearest second)."""
    total = int(round(float(ms) / 1000))
    return f"{total // 60}:{total % 60:02d}"


# A length as text: m:ss, m:ss.s, or h:mm:ss as spreadsheets write a time of day. The one rule
# for every reader (the controls, ``check_value``, and ``check_rows``'s vectorised path).
MINUTES_SECONDS = re.compile(r"^\s*(?:(\d{1,2}):)?(\d{1,3}):(\d{1,2}(?:\.\d*)?)\s*$")


def parse_duration(text: str) -> float:
    """``"3:05"`` → ``185000.0`` ms (also ``"3:05.5"``, ``"0:03:05"``). Raises ``ValueError``
    with a plain message."""
    match = MINUTES_SECONDS.match(str(text))
    if not match:
        raise ValueError(f"length {shown(text)} is not minutes:seconds like 3:05")
    hours, minutes, seconds = (float(part) if part is not None else None for part in match.groups())
    if seconds >= 60 or (hours is not None and minutes >= 60):
        raise ValueError(f"length {shown(text)}: seconds and minutes must be below 60")
    return (((hours or 0.0) * 60 + minutes) * 60 + seconds) * 1000


def parse_key(value: Any) -> float:
    """A pitch class from ``5``, ``"5"``, ``"F"``, ``"F#"``, ``"Gb"`` or ``"F♯/G♭"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _plain_number(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    base = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
    name = text.split("/")[0].strip().replace("♯", "#").replace("♭", "b")
    if name[:1].upper() in base and name[1:] in ("", "#", "b"):
        shift = {"": 0, "#": 1, "b": -1}[name[1:]]
        return float((base[name[0].upper()] + shift) % 12)
    raise ValueError(f"key {shown(value)} is not a note name (C, F#, Bb…) or a number 0–11")


def parse_mode(value: Any) -> float:
    """``1``/``0``, ``"major"``/``"minor"`` (any case) → 1.0/0.0."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _plain_number(value)
    text = str(value).strip().lower()
    if text in ("major", "maj"):
        return 1.0
    if text in ("minor", "min"):
        return 0.0
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"mode {shown(value)} is not major/minor or 1/0") from None


def _plain_number(value: Any) -> float:
    """A number from a number or numeric text; ``ValueError`` with a plain message otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{shown(value)} is not a number")
    try:
        return float(value)
    except OverflowError:  # an int beyond float range, e.g. 10**400 from JSON
        raise ValueError(f"{shown(value)} is far outside any valid range") from None
    except (TypeError, ValueError):
        raise ValueError(f"{shown(value)} is not a number") from None


def check_value(name: str, value: Any) -> float:
    """Return ``value`` as a float in the unit of characteristic ``name``.

    Raises ``ValueError`` naming the characteristic when it is unknown, not a number,
    not finite or out of its physical range.
    """
    if name not in BY_NAME:
        raise ValueError(f"unknown characteristic {shown(name)}; expected one of {', '.join(FEATURE_NAMES)}")
    feature = BY_NAME[name]
    try:
        if feature.kind == "key":
            number = parse_key(value)
        elif feature.kind == "mode":
            number = parse_mode(value)
        elif feature.kind == "duration" and isinstance(value, str) and ":" in value:
            number = parse_duration(value)
        else:
            number = _plain_number(value)
    except (TypeError, ValueError) as err:
        detail = str(err) if str(err) else f"{shown(value)} is not a number"
        raise ValueError(f"{name}: {detail}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name}: {shown(value)} is not a finite number")
    if number < feature.low or number > feature.high:
        raise ValueError(
            f"{name}: {number:g} is outside the valid range {feature.low:g}–{feature.high:g} {feature.unit}"
        )
    if feature.is_discrete and number != int(number):
        raise ValueError(f"{name}: {number:g} must be a whole number")
    return number


def default_song() -> dict[str, float]:
    """The typical TikTok track: the median of each characteristic over training tracks."""
    return {f.name: float(f.default) for f in FEATURES}


def parse_song(raw: Mapping[str, Any]) -> tuple[dict[str, float], list[str]]:
    """Validate a song given as a mapping of characteristic → value.

    Returns ``(song, filled)``: the complete song in Spotify units and the names of the
    characteristics that were missing and filled with their default. ``duration_ms`` is
    accepted for ``duration``. Raises ``ValueError`` for unknown names or bad values.
    """
    if not isinstance(raw, Mapping):
        raise ValueError("a song must be a JSON object like {\"tempo\": 120, ...}")
    raw = dict(raw)
    if "duration_ms" in raw and "duration" not in raw:
        raw["duration"] = raw.pop("duration_ms")
    unknown = [k for k in raw if k not in BY_NAME]
    if unknown:
        raise ValueError(
            f"unknown characteristic(s) {', '.join(map(shown, unknown[:5]))}"
            f"{f' and {len(unknown) - 5} more' if len(unknown) > 5 else ''}; "
            f"expected {', '.join(FEATURE_NAMES)}"
        )
    song, filled = {}, []
    for feature in FEATURES:
        if feature.name in raw and raw[feature.name] is not None:
            song[feature.name] = check_value(feature.name, raw[feature.name])
        else:
            song[feature.name] = float(feature.default)
            filled.append(feature.name)
    return song, filled


def load_song_arg(text: str) -> tuple[dict[str, float], list[str]]:
    """Parse a ``--song`` argument: inline JSON or a path to a JSON file.

    Accepts the output of ``python -m virality features --json`` too, where each value is
    ``{"value": v, "confidence": c}``.
    """
    if not text.lstrip().startswith(("{", "[")):
        text = _read_song_file(text)
    return parse_song_json(text)


def parse_song_json(source: str) -> tuple[dict[str, float], list[str]]:
    """A song from JSON text (the ``--song`` format, also the Predict page's song file):
    ``(song, filled)`` as ``parse_song``; ``ValueError`` with a plain line when the text is
    not JSON or not a song."""
    try:
        raw = json.loads(source)
    except json.JSONDecodeError as err:
        raise ValueError(f"song is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    except (ValueError, RecursionError) as err:  # a 5,000-digit number; nesting thousands deep
        raise ValueError(f"song is not usable JSON: {str(err).split(':')[0]}") from None
    if isinstance(raw, dict):
        raw = {k: (v.get("value") if isinstance(v, dict) else v) for k, v in raw.items()}
    return parse_song(raw)


def _read_song_file(text: str) -> str:
    """The text of the JSON file named ``text``; ``ValueError`` with a plain line otherwise."""
    try:
        path = Path(text)
        if not path.is_file():
            raise ValueError(f"--song {shown(text)} is neither inline JSON nor a readable file")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"--song {shown(text)} is not a UTF-8 text file") from None
    except OSError as err:  # name too long, permission denied …
        raise ValueError(f"--song {shown(text)} cannot be read ({err.strerror or err})") from None

