"""Which input column holds which characteristic, and in which unit.

Users bring Spotify/Kaggle exports and their own spreadsheets: headers in any case, with
spaces or underscores, ``tempo_bpm``, ``duration_ms`` or a length in seconds or as m:ss.
``map_columns`` finds them and says what it did (``ColumnMap.report``), so nothing is
silently re-interpreted (two columns meaning the same characteristic, e.g. ``tempo`` and
``BPM``, are named in ``ColumnMap.choices``); ``read_values`` turns the mapped columns into
Spotify units and lists every bad cell.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from virality.data.errors import DataError
from virality.data.validation import DECIMAL_COMMA, check_rows, point_notation
from virality.features import BY_NAME, FEATURE_NAMES, shown

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
CHARACTERISTIC_OF = {synonym: name for name, synonyms in SYNONYMS.items() for synonym in synonyms}


def normalise_header(header: str) -> str:
    """``"Tempo (BPM)"`` → ``"tempo_bpm"``: lower case, runs of other characters → ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", str(header).strip().lower()).strip("_")


def characteristics_named(cells: Iterable[object]) -> int:
    """How many different characteristics a row of cells names as headers (0–12): how the
    reader tells a header row from a title row above it."""
    return len({CHARACTERISTIC_OF.get(normalise_header(c)) for c in cells if isinstance(c, str)} - {None})


@dataclass
class ColumnMap:
    """``sources``: characteristic → the input column holding it. ``duration_unit``: ``"ms"``,
    ``"s"`` or ``"m:ss"`` (plain numbers of the duration column are read in that unit; a
    ``m:ss`` cell is always minutes:seconds). ``missing``: characteristics with no column.
    ``extra``: input columns that are not characteristics (kept as they are). ``choices``:
    characteristic → the other columns that mean it too (kept as they are, not read).
    ``decimal``: the file's decimal mark (``","`` reads ``0,68`` as 0.68)."""

    sources: dict[str, str]
    duration_unit: str = "ms"
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    choices: dict[str, list[str]] = field(default_factory=dict)
    decimal: str = "."

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
                         "read as": unit if name in self.sources else "",
                         "also meant it (not read)": ", ".join(map(str, self.choices.get(name, [])))})
        return pd.DataFrame(rows)

    def choice_notes(self) -> list[str]:
        """One sentence per characteristic that two or more columns mean, naming the one read:
        ``"two columns mean tempo: 'tempo' is read, 'BPM' is kept as it is"``."""
        notes = []
        for name, others in self.choices.items():
            count = {1: "two", 2: "three"}.get(len(others), str(len(others) + 1))
            notes.append(f"{count} columns mean {name}: {shown(str(self.sources[name]))} is read, "
                         f"{', '.join(shown(str(o)) for o in others)} kept as it is")
        return notes

    def describe_missing(self, frame: pd.DataFrame) -> str:
        """One line for a ``DataError``: what is missing and what the file does have."""
        found = ", ".join(shown(str(c)) for c in frame.columns[:10]) + (" …" if len(frame.columns) > 10 else "")
        hint = ""
        if len(frame.columns) == 1:
            hint = " (only one column: is the file separated by something other than comma, semicolon or tab?)"
        return f"missing column(s) {', '.join(self.missing)}; the file has: {found}{hint}"


def map_columns(frame: pd.DataFrame, decimal: str | None = None) -> ColumnMap:
    """Find each characteristic's column in ``frame`` (text cells as read by
    ``virality.data.read_csv_file``) and the unit of its duration column (from all of
    ``frame``'s rows; see ``DurationVotes`` to decide it over a file read in chunks).

    The first listed synonym present wins (``tempo`` before ``BPM``), then the leftmost
    column (``tempo`` before ``Tempo``); the others are listed in ``choices``. ``decimal``:
    the file's decimal mark, by default the one ``read_csv_file`` found (``frame.attrs``)."""
    if decimal is None:
        reading = frame.attrs.get("reading")
        decimal = getattr(reading, "decimal", ".")
    by_normal: dict[str, list[str]] = {}
    for column in frame.columns:
        by_normal.setdefault(normalise_header(column), []).append(column)
    sources, choices = {}, {}
    for name, synonyms in SYNONYMS.items():
        candidates = [column for synonym in synonyms for column in by_normal.get(synonym, [])]
        if candidates:
            sources[name] = candidates[0]
            if len(candidates) > 1:
                choices[name] = candidates[1:]
    unit = "ms"
    if "duration" in sources:
        votes = DurationVotes(sources["duration"], decimal)
        votes.add(frame[sources["duration"]])
        unit = votes.unit()
    used = set(sources.values())
    return ColumnMap(sources=sources, duration_unit=unit, missing=[n for n in FEATURE_NAMES if n not in sources],
                     extra=[c for c in frame.columns if c not in used], choices=choices, decimal=decimal)


@dataclass
class DurationVotes:
    """The unit of a duration column, decided over its cells added in any number of parts.

    ``"s"`` for a seconds header, ``"ms"`` for a ms header; otherwise from the values:
    mostly ``m:ss`` text → ``"m:ss"``; numbers with a median under 10,000 (a track is at
    least 10 s = 10,000 ms long) → seconds. The tallies decide "median under 10,000" exactly
    as ``np.median`` of all the numbers would: more than half under it, or exactly half and
    the two middle numbers (the largest under, the smallest not under) average under it."""

    header: str
    decimal: str = "."
    cells: int = 0  # non-empty cells
    colons: int = 0  # cells with a ":"
    numbers: int = 0
    below: int = 0  # numbers under the threshold
    largest_below: float = -math.inf
    smallest_not_below: float = math.inf

    @property
    def fixed(self) -> str | None:
        """The unit the header alone says, or None when the values decide."""
        header = normalise_header(self.header)
        return "s" if header in SECONDS_HEADERS else "ms" if header in MS_HEADERS else None

    def add(self, cells: pd.Series) -> None:
        if self.fixed is not None:
            return
        text = cells.dropna().astype(str)
        self.cells += len(text)
        self.colons += int(text.str.contains(":", regex=False).sum())
        if self.decimal == DECIMAL_COMMA:
            text = point_notation(text).astype(str)
        numbers = pd.to_numeric(text, errors="coerce").dropna().to_numpy(float)
        low = BY_NAME["duration"].low
        under, over = numbers[numbers < low], numbers[numbers >= low]
        self.numbers += len(numbers)
        self.below += len(under)
        if len(under):
            self.largest_below = max(self.largest_below, float(under.max()))
        if len(over):
            self.smallest_not_below = min(self.smallest_not_below, float(over.min()))

    def unit(self) -> str:
        if self.fixed is not None:
            return self.fixed
        if not self.cells:
            return "ms"
        if self.colons / self.cells > 0.5:
            return "m:ss"
        return "s" if self.numbers and self._median_below() else "ms"

    def _median_below(self) -> bool:
        low = BY_NAME["duration"].low
        if 2 * self.below != self.numbers:
            return 2 * self.below > self.numbers
        return (self.largest_below + self.smallest_not_below) / 2 < low  # np.median's mean of the middle two


def read_values(frame: pd.DataFrame, columns: ColumnMap) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mapped columns → ``(values, problems)`` as ``virality.data.check_rows`` returns them.

    ``values``: (n, 12) floats in Spotify units, one column per characteristic found
    (NaN where the cell is bad); ``problems[row, column, value, why]`` name the *input*
    column, so the user finds the cell in their own file.
    """
    renamed = frame[list(columns.sources.values())].set_axis(list(columns.sources), axis=1)
    values, problems = check_rows(renamed, tuple(columns.sources), scales=columns.scales, decimal=columns.decimal)
    problems["column"] = problems["column"].map(columns.sources)
    return values, problems


def require_all(frame: pd.DataFrame, columns: ColumnMap) -> None:
    """Raise ``DataError`` naming the missing characteristics (and what the file has)."""
    if columns.missing:
        raise DataError(columns.describe_missing(frame))
