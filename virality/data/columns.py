"""Which input column holds which characteristic, and in which unit.

Users bring Spotify/Kaggle exports and their own spreadsheets: headers in any case, with
spaces or underscores, ``tempo_bpm``, ``duration_ms`` or a length in seconds or as m:ss.
``map_columns`` finds them and says what it did (``ColumnMap.report``), so nothing is
silently re-interpreted; ``read_values`` turns the mapped columns into Spotify units and
lists every bad cell.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from virality.data.reading import DataError, shown
from virality.data.validation import check_rows
from virality.features import BY_NAME, FEATURE_NAMES

# normalised header → characteristic; the first listed synonym present wins
SYNONYMS: dict[str, tuple[str, ...]] = {
    "danceability": ("danceability", "dance"),
    "energy": ("energy",),
    "key": ("key", "musical_key", "key_name", "pitch_class", "tonic"),
    "loudness": ("loudness", "loudness_db"),
    "mode": ("mode", "modality", "major_minor"),
    "speechiness": ("speechiness",),
    "acousticness": ("acousticness",),
    "instrumentalness": ("instrumentalness",),
    "liveness": ("liveness",),
    "valence": ("valence",),
    "tempo": ("tempo", "tempo_bpm", "bpm"),
    "duration": ("duration_ms", "length_ms", "duration", "length", "duration_s", "duration_sec",
                 "duration_secs", "duration_seconds", "length_s", "length_sec", "length_seconds"),
}
SECONDS_HEADERS = {"duration_s", "duration_sec", "duration_secs", "duration_seconds", "length_s", "length_sec",
                   "length_seconds"}
MS_HEADERS = {"duration_ms", "length_ms"}
MS_PER_SECOND = 1000.0
DURATION_UNITS = {"ms": "milliseconds", "s": "seconds (× 1000 → ms)", "m:ss": "minutes:seconds"}


def normalise_header(header: str) -> str:
    """``"Tempo (BPM)"`` → ``"tempo_bpm"``: lower case, runs of other characters → ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", str(header).strip().lower()).strip("_")


@dataclass
class ColumnMap:
    """``sources``: characteristic → the input column holding it. ``duration_unit``: ``"ms"``,
    ``"s"`` or ``"m:ss"`` (plain numbers of the duration column are read in that unit; a
    ``m:ss`` cell is always minutes:seconds). ``missing``: characteristics with no column.
    ``extra``: input columns that are not characteristics (kept as they are)."""

    sources: dict[str, str]
    duration_unit: str = "ms"
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def scales(self) -> dict[str, float]:
        return {"duration": MS_PER_SECOND} if self.duration_unit == "s" else {}

    def report(self) -> pd.DataFrame:
        """One row per characteristic: ``characteristic``, ``column`` (input header or
        ``"— not found"``), ``read as`` (the unit it is read in)."""
        rows = []
        for name in FEATURE_NAMES:
            feature = BY_NAME[name]
            unit = DURATION_UNITS[self.duration_unit] if name == "duration" else feature.unit
            rows.append({"characteristic": name, "column": self.sources.get(name, "— not found"),
                         "read as": unit if name in self.sources else ""})
        return pd.DataFrame(rows)

    def describe_missing(self, frame: pd.DataFrame) -> str:
        """One line for a ``DataError``: what is missing and what the file does have."""
        found = ", ".join(shown(str(c)) for c in frame.columns[:10]) + (" …" if len(frame.columns) > 10 else "")
        hint = ""
        if len(frame.columns) == 1:
            hint = " (only one column: is the file separated by something other than comma, semicolon or tab?)"
        return f"missing column(s) {', '.join(self.missing)}; the file has: {found}{hint}"


def map_columns(frame: pd.DataFrame) -> ColumnMap:
    """Find each characteristic's column in ``frame`` (text cells as read by
    ``virality.data.read_csv_file``) and the unit of its duration column."""
    by_normal: dict[str, str] = {}
    for column in frame.columns:
        by_normal.setdefault(normalise_header(column), column)
    sources = {}
    for name, synonyms in SYNONYMS.items():
        for synonym in synonyms:
            if synonym in by_normal:
                sources[name] = by_normal[synonym]
                break
    unit = _duration_unit(frame[sources["duration"]]) if "duration" in sources else "ms"
    used = set(sources.values())
    return ColumnMap(sources=sources, duration_unit=unit, missing=[n for n in FEATURE_NAMES if n not in sources],
                     extra=[c for c in frame.columns if c not in used])


def _duration_unit(cells: pd.Series) -> str:
    """``"s"`` for a seconds header, ``"ms"`` for a ms header; otherwise from the values:
    mostly ``m:ss`` text → ``"m:ss"``; numbers with a median under 10,000 (a track is
    at least 10 s = 10,000 ms long) → seconds."""
    header = normalise_header(cells.name)
    if header in SECONDS_HEADERS:
        return "s"
    if header in MS_HEADERS:
        return "ms"
    text = cells.dropna().astype(str)
    if text.empty:
        return "ms"
    if text.str.contains(":", regex=False).mean() > 0.5:
        return "m:ss"
    numbers = pd.to_numeric(text, errors="coerce").dropna()
    return "s" if len(numbers) and float(np.median(numbers)) < BY_NAME["duration"].low else "ms"


def read_values(frame: pd.DataFrame, columns: ColumnMap) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mapped columns → ``(values, problems)`` as ``virality.data.check_rows`` returns them.

    ``values``: (n, 12) floats in Spotify units, one column per characteristic found
    (NaN where the cell is bad); ``problems[row, column, value, why]`` name the *input*
    column, so the user finds the cell in their own file.
    """
    renamed = frame[list(columns.sources.values())].set_axis(list(columns.sources), axis=1)
    values, problems = check_rows(renamed, tuple(columns.sources), scales=columns.scales)
    problems["column"] = problems["column"].map(columns.sources)
    return values, problems


def require_all(frame: pd.DataFrame, columns: ColumnMap) -> None:
    """Raise ``DataError`` naming the missing characteristics (and what the file has)."""
    if columns.missing:
        raise DataError(columns.describe_missing(frame))
