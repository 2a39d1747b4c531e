"""Reading, validating, de-duplicating and splitting the TikTok tracks data.

Row numbers in problem reports are *spreadsheet rows*: the header is row 1, so the first
track is row 2 — what a user sees when they open the file in Excel or Numbers.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from virality.features import BY_NAME, FEATURE_NAMES, parse_key, parse_mode, shown

TARGET = "popularity"
ID_COLUMN = "track_id"
REQUIRED_COLUMNS = (ID_COLUMN, TARGET, *FEATURE_NAMES)
DRIVE_FILE_ID = "1LG642eXvzRxJq-UFX-Aqrxdra_4p2dKy"
DEFAULT_DOWNLOAD_DIR = Path("data")
FIRST_DATA_ROW = 2  # spreadsheet numbering: row 1 is the header
PROBLEM_COLUMNS = ["row", "column", "value", "why"]
SEPARATORS = ",;\t"
SNIFF_CHARS = 65_536


class DataError(ValueError):
    """A data file that cannot be used at all (missing, empty, not a CSV, wrong columns)."""


@dataclass
class TrackData:
    """A validated, de-duplicated tracks table.

    ``tracks``: one row per ``track_id`` with the 12 characteristics (float) and
    ``popularity`` (median over the track's rows). ``problems``: the dropped rows' reasons.
    """

    tracks: pd.DataFrame
    n_rows: int
    problems: pd.DataFrame

    @property
    def n_bad_rows(self) -> int:
        return int(self.problems["row"].nunique()) if len(self.problems) else 0


def read_csv_file(path: str | Path) -> pd.DataFrame:
    """Read a CSV as text columns; raise ``DataError`` with one plain line when unusable."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a CSV file")
    head = path.open("rb").read(4096)
    if not head.strip():
        raise DataError(f"{path}: the file is empty")
    if b"\x00" in head:
        raise DataError(f"{path}: this is a binary file, not a CSV")
    try:
        try:
            header, frame = _read_text_csv(path, "utf-8-sig")
        except UnicodeDecodeError:
            header, frame = _read_text_csv(path, "latin-1")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as err:
        raise DataError(f"{path}: not a readable CSV ({str(err).splitlines()[0][:200]})") from None
    _refuse_duplicated_header(path, header)
    return frame


def _refuse_duplicated_header(path: Path, header: list[str]) -> None:
    """Two columns with one name are ambiguous (which ``tempo`` is meant?): refuse them,
    naming the columns by position (first column = 1)."""
    seen: dict[str, list[int]] = {}
    for position, name in enumerate(header, start=1):
        if name:
            seen.setdefault(name, []).append(position)
    repeated = {name: places for name, places in seen.items() if len(places) > 1}
    if repeated:
        name, places = next(iter(repeated.items()))
        more = f" (and {len(repeated) - 1} more repeated name(s))" if len(repeated) > 1 else ""
        raise DataError(f"{path}: column name {shown(name)} appears {len(places)} times (columns "
                        f"{', '.join(map(str, places[:5]))}){more}: rename or remove the extra ones")


def _read_text_csv(path: Path, encoding: str) -> tuple[list[str], pd.DataFrame]:
    """``(header names, table)``: all cells as text (``NaN`` for empty); comma, semicolon or
    tab separated, sniffed from the header line.

    The header is read as a plain row: pandas would rename a repeated name (``tempo.1``)
    and, when data rows carry one field more than the header, silently take the first
    column as the index and shift every value one column left. Read this way, such a row
    is a ``ParserError`` naming its line.
    """
    raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, na_values=[""],
                      sep=_separator(path, encoding), engine="python", encoding=encoding)
    header = ["" if pd.isna(c) else str(c).strip() for c in raw.iloc[0]] if len(raw) else []
    frame = raw.iloc[1:].reset_index(drop=True)
    frame.columns = [name or f"Unnamed: {i}" for i, name in enumerate(header)]
    return header, frame


def _separator(path: Path, encoding: str) -> str:
    """Comma, semicolon or tab, sniffed from the header line; comma for a one-column file.

    (Unrestricted sniffing takes a letter for the separator when the header has no comma.)
    """
    with path.open(encoding=encoding, newline="") as handle:
        first_line = handle.readline(SNIFF_CHARS)
    try:
        return csv.Sniffer().sniff(first_line, delimiters=SEPARATORS).delimiter
    except csv.Error:
        return ","


def check_rows(frame: pd.DataFrame, columns: tuple[str, ...] = FEATURE_NAMES) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Convert ``columns`` of ``frame`` to floats in Spotify units and list every bad cell.

    Returns ``(values, problems)``: ``values`` has the same index as ``frame`` and one
    float column per characteristic, NaN where the cell is bad; ``problems`` has columns
    ``row`` (spreadsheet row), ``column``, ``value``, ``why``. Vectorised: 100k rows in ms.
    """
    values = pd.DataFrame(index=frame.index)
    problem_parts = []
    positions = np.arange(len(frame)) + FIRST_DATA_ROW
    for name in columns:
        raw = frame[name]
        numbers = _to_numbers(name, raw)
        missing = raw.isna() | (raw.astype(str).str.strip() == "")
        not_number = numbers.isna() & ~missing
        feature = BY_NAME.get(name)
        out_of_range = pd.Series(False, index=frame.index)
        why_range = ""
        if feature is not None:
            finite = np.isfinite(numbers)
            out_of_range = numbers.notna() & (~finite | (numbers < feature.low) | (numbers > feature.high))
            if feature.is_discrete:
                out_of_range |= numbers.notna() & finite & (numbers != np.round(numbers))
            why_range = f"outside the valid range {feature.low:g}–{feature.high:g} {feature.unit}"
            if feature.is_discrete:
                why_range += " (whole numbers)"
        for mask, why in ((missing, "missing"), (not_number, "not a number"), (out_of_range, why_range)):
            if mask.any():
                problem_parts.append(pd.DataFrame({
                    "row": positions[mask.to_numpy()], "column": name,
                    "value": raw[mask].astype(str).to_numpy(), "why": why,
                }))
        values[name] = numbers.where(~(missing | not_number | out_of_range))
    problems = (pd.concat(problem_parts, ignore_index=True).sort_values(["row", "column"], kind="stable")
                .reset_index(drop=True) if problem_parts else pd.DataFrame(columns=PROBLEM_COLUMNS))
    return values.astype(float), problems


def _to_numbers(name: str, raw: pd.Series) -> pd.Series:
    """Numeric conversion with note names for key and major/minor for mode; ``(n,)`` floats, NaN if unreadable."""
    numbers = pd.to_numeric(raw, errors="coerce")
    # the scalar parsers agree with ``check_value``: note names, major/minor, and what
    # ``float`` reads but pandas does not (non-breaking spaces, Arabic-Indic digits)
    parser = {"key": parse_key, "mode": parse_mode}.get(name, float)
    leftover = numbers.isna() & raw.notna()
    if leftover.any():
        numbers = numbers.astype(float)
        numbers[leftover] = raw[leftover].map(lambda v: _try(parser, v))
    return numbers.astype(float)


def _try(parser, value) -> float:
    try:
        return parser(value)
    except (ValueError, TypeError):
        return np.nan


def load_tracks(path: str | Path) -> TrackData:
    """Read a tracks CSV, drop and count bad rows, and keep one row per ``track_id``.

    Raises ``DataError`` when the file is missing, empty, not a CSV or lacks a required
    column. A track's popularity is the median over its rows (it appears in several
    playlists); its characteristics are the same on every row.
    """
    frame = read_csv_file(path)
    if "duration" not in frame.columns and "duration_ms" in frame.columns:
        frame = frame.rename(columns={"duration_ms": "duration"})
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    if frame.empty:
        raise DataError(f"{path}: has a header but no rows")
    values, problems = check_rows(frame, (TARGET, *FEATURE_NAMES))
    bad_target = values[TARGET].notna() & ((values[TARGET] < 0) | (values[TARGET] > 100))
    values.loc[bad_target, TARGET] = np.nan
    ids = frame[ID_COLUMN].astype("string").str.strip()
    no_id = ids.isna() | (ids == "")
    extra = []
    if bad_target.any():
        extra.append(_problem_rows(frame, bad_target, TARGET, "popularity must be 0–100"))
    if no_id.any():
        extra.append(_problem_rows(frame, no_id, ID_COLUMN, "missing"))
    problems = pd.concat([problems, *extra], ignore_index=True) if extra else problems
    good = values.notna().all(axis=1) & ~no_id
    if not good.any():
        raise DataError(f"{path}: no usable rows ({len(frame)} rows, all with problems)")
    values[ID_COLUMN] = ids
    tracks = (values[good].groupby(ID_COLUMN, sort=True)
              .agg({**{n: "first" for n in FEATURE_NAMES}, TARGET: "median"}).reset_index())
    return TrackData(tracks=tracks, n_rows=len(frame), problems=problems)


def _problem_rows(frame: pd.DataFrame, mask: pd.Series, column: str, why: str) -> pd.DataFrame:
    rows = np.flatnonzero(mask.to_numpy()) + FIRST_DATA_ROW
    return pd.DataFrame({"row": rows, "column": column, "value": frame.loc[mask, column].astype(str).to_numpy(),
                         "why": why})


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def group_split(ids: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Split row positions into parts whose ``ids`` never overlap.

    ``ids``: shape (n,). ``fractions`` sum to 1 (e.g. ``(0.7, 0.15, 0.15)``). Returns one
    array of row positions per fraction; all rows of one id land in the same part.
    """
    unique = np.unique(ids)
    order = np.random.default_rng(seed).permutation(len(unique))
    bounds = np.round(np.cumsum(fractions) * len(unique)).astype(int)
    parts, start = [], 0
    for stop in bounds:
        chosen = set(unique[order[start:stop]])
        parts.append(np.flatnonzero(np.isin(ids, list(chosen))))
        start = stop
    return parts


def group_kfold(ids: np.ndarray, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_splits`` (train, test) position pairs; each id is in exactly one test fold."""
    unique = np.unique(ids)
    fold_of = dict(zip(unique[np.random.default_rng(seed).permutation(len(unique))],
                       np.arange(len(unique)) % n_splits))
    folds = np.array([fold_of[i] for i in ids])
    return [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(n_splits)]


def download(dest_dir: str | Path = DEFAULT_DOWNLOAD_DIR, file_id: str = DRIVE_FILE_ID) -> tuple[Path, TrackData]:
    """Fetch the project's published preprocessed data set with gdown and validate it.

    Returns the saved path and its ``TrackData``; raises ``DataError`` when the download
    fails or the file does not fit the schema (the bad file is kept for inspection).
    """
    import gdown

    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / "tiktok_tracks.csv"
    try:
        result = gdown.download(id=file_id, output=str(target), quiet=False)
    except Exception as err:  # gdown raises many types (network, permission, HTML page)
        raise DataError(f"download of Google Drive file {file_id} failed: {err}") from None
    if not result or not target.exists():
        raise DataError(f"download of Google Drive file {file_id} failed: nothing was saved")
    try:
        return target, load_tracks(target)
    except DataError as err:
        raise DataError(f"the downloaded file does not fit the tracks schema: {err}") from None
