"""Checking a table's characteristic columns cell by cell: floats in Spotify units, and every bad cell.

Row numbers in problem reports are *spreadsheet rows*: the header is row 1, so the first
track is row 2 — what a user sees when they open the file in Excel or Numbers.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from virality.features import BY_NAME, FEATURE_NAMES, MINUTES_SECONDS, format_duration, parse_key, parse_mode

FIRST_DATA_ROW = 2  # spreadsheet numbering: row 1 is the header
PROBLEM_COLUMNS = ["row", "column", "value", "why"]
DECIMAL_COMMA = ","  # the notation of files separated by semicolons or tabs (Excel in much of Europe)


def spreadsheet_rows(frame: pd.DataFrame) -> np.ndarray:
    """(n,) int: the spreadsheet row of each row of ``frame``.

    ``read_csv_file`` numbers rows by their place in the file (a header on row 3 puts the
    first track on row 4; a skipped blank row leaves a gap), so an integer index that starts
    at ``FIRST_DATA_ROW`` or later and increases is taken as is; any other index (a table made
    in code) counts from the header on row 1: position + 2."""
    index = frame.index
    if (len(index) and pd.api.types.is_integer_dtype(index.dtype) and not isinstance(index, pd.MultiIndex)
            and index[0] >= FIRST_DATA_ROW and index.is_monotonic_increasing and index.is_unique):
        return index.to_numpy(np.int64)
    return np.arange(len(frame), dtype=np.int64) + FIRST_DATA_ROW


def point_notation(cells: pd.Series) -> pd.Series:
    """Cells written with a decimal comma (``0,68``, ``-7,8``: exactly one comma and no point)
    with a point instead (``0.68``); every other cell as it is. Text cells in, text cells out."""
    text = cells.astype(object).where(cells.notna(), None)
    strings = text.map(type) == str  # noqa: E721 — exact type test, vectorised per column
    if not strings.any():
        return cells
    as_text = text.where(strings, "").astype(str)
    comma = strings & (as_text.str.count(",") == 1) & ~as_text.str.contains(".", regex=False)
    if not comma.any():
        return cells
    return cells.astype(object).where(~comma, as_text.str.replace(",", ".", regex=False))


def check_rows(frame: pd.DataFrame, columns: tuple[str, ...] = FEATURE_NAMES,
               scales: Mapping[str, float] | None = None,
               decimal: str = ".") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Convert ``columns`` of ``frame`` to floats in Spotify units and list every bad cell.

    Key accepts note names (``F#``, ``Gb``), mode ``major``/``minor``, duration
    ``m:ss`` text (always read as minutes:seconds). ``scales``: multiplier applied to
    plain numbers of a column before the range check (e.g. ``{"duration": 1000}`` for a
    length in seconds). ``decimal=","``: the file's notation has decimal commas, so a cell
    like ``0,68`` is the number 0.68 (see ``point_notation``; a point still reads as one).
    Returns ``(values, problems)``: ``values`` has the same index as ``frame`` and one
    float column per characteristic, NaN where the cell is bad; ``problems`` has columns
    ``row`` (spreadsheet row, see ``spreadsheet_rows``), ``column``, ``value`` (the cell as
    the file gave it), ``why``. Vectorised: 100k rows in ms.
    """
    values = pd.DataFrame(index=frame.index)
    problem_parts = []
    positions = spreadsheet_rows(frame)
    for name in columns:
        raw = frame[name]
        scale = (scales or {}).get(name, 1.0)
        text = raw
        plain = _plain_numbers(raw)
        if plain is None and decimal == DECIMAL_COMMA:
            text = point_notation(raw)
            plain = _plain_numbers(text) if text is not raw else None
        if plain is not None:  # the usual case: every cell a number or empty
            numbers, missing = pd.Series(plain * scale, index=frame.index), raw.isna()
        else:
            numbers = _to_numbers(name, text, scale)
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
            why_range = _range_text(feature)
        why_text = "not a number or a m:ss length" if name == "duration" else "not a number"
        for mask, why in ((missing, "missing"), (not_number, why_text), (out_of_range, why_range)):
            if mask.any():
                problem_parts.append(pd.DataFrame({
                    "row": positions[mask.to_numpy()], "column": name,
                    "value": raw[mask].astype(str).to_numpy(), "why": why,
                }))
        values[name] = numbers.where(~(missing | not_number | out_of_range))
    problems = (pd.concat(problem_parts, ignore_index=True).sort_values(["row", "column"], kind="stable")
                .reset_index(drop=True) if problem_parts else pd.DataFrame(columns=PROBLEM_COLUMNS))
    return values.astype(float), problems


def _range_text(feature) -> str:
    """``"outside the valid range 0–250 BPM"``; lengths in m:ss, whole-number kinds said so."""
    if feature.kind == "duration":
        return (f"outside the valid range {format_duration(feature.low)}–{format_duration(feature.high)} "
                "(m:ss; plain numbers are milliseconds unless the column is in seconds)")
    text = f"outside the valid range {feature.low:g}–{feature.high:g} {feature.unit}"
    return text + " (whole numbers)" if feature.is_discrete else text


def _plain_numbers(raw: pd.Series) -> np.ndarray | None:
    """(n,) floats when every non-empty cell reads with Python's ``float`` (empty → NaN),
    else None. Ten times faster than ``pd.to_numeric`` on text and reads exactly what the
    slow path's ``float`` fallback reads, so the two paths agree cell by cell."""
    fast = _arrow_numbers(raw)
    if fast is not None:
        return fast
    try:
        return raw.to_numpy(dtype=object, na_value=np.nan).astype(np.float64)
    except (ValueError, TypeError, OverflowError):
        return None


def _arrow_numbers(raw: pd.Series) -> np.ndarray | None:
    """``_plain_numbers`` of a column of arrow-backed text (what ``read_csv_file`` gives), cast
    by arrow in C++ (10× faster than Python's ``float`` cell by cell), or None to take the
    Python path. Arrow reads a subset of what ``float`` reads, to the same correctly rounded
    value (no spaces, ``_`` or non-ASCII digits; tests/test_score_paths.py), except that it also
    reads ``nan(…)``: any NaN from a non-empty cell sends the column to the Python path."""
    if getattr(raw.dtype, "storage", None) != "pyarrow":
        return None
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:
        return None
    text = pa.array(raw.array)  # no copy: the column's own arrow buffers
    try:
        numbers = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    if np.isnan(numbers).sum() != text.null_count:
        return None
    return numbers


def reads_as_number(texts: pd.Series) -> np.ndarray:
    """(n,) bool: text cells that ``check_rows`` reads as a plain number (Python's ``float``:
    ``-6.5``, ``1e3``, `` 7 ``, ``-inf``); the one numpy cast when all do, else cell by cell."""
    if _plain_numbers(texts) is not None:
        return texts.notna().to_numpy()
    lookup = {text: _is_float(text) for text in texts.dropna().unique()}
    return texts.map(lookup).fillna(False).astype(bool).to_numpy()


def _is_float(text) -> bool:
    try:
        float(text)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _to_numbers(name: str, raw: pd.Series, scale: float = 1.0) -> pd.Series:
    """Numeric conversion with note names for key, major/minor for mode, m:ss for duration."""
    numbers = pd.to_numeric(raw, errors="coerce").astype(float) * scale
    leftover = numbers.isna() & raw.notna()
    if not leftover.any():
        return numbers
    if name == "duration":
        parts = raw[leftover].astype(str).str.extract(MINUTES_SECONDS).astype(float)
        hours = parts[0].fillna(0.0)
        fits = (parts[2] < 60) & (parts[0].isna() | (parts[1] < 60))
        numbers[leftover] = (((hours * 60 + parts[1]) * 60 + parts[2]) * 1000).where(fits)
        leftover = numbers.isna() & raw.notna()
        if not leftover.any():
            return numbers
    # the scalar parsers agree with ``check_value``: note names, major/minor, and what
    # ``float`` reads but pandas does not (non-breaking spaces, Arabic-Indic digits)
    parser = {"key": parse_key, "mode": parse_mode}.get(name, float)
    texts = raw[leftover]
    lookup = {text: _try(parser, text) for text in texts.unique()}  # usually few distinct texts
    numbers[leftover] = texts.map(lookup).astype(float) * (scale if parser is float else 1.0)
    return numbers


def _try(parser, value) -> float:
    try:
        return float(parser(value))
    except (ValueError, TypeError, OverflowError):
        return np.nan


def problem_rows(frame: pd.DataFrame, mask: pd.Series, column: str, why: str) -> pd.DataFrame:
    """``problems`` rows (``row``, ``column``, ``value``, ``why``) for the cells of ``column`` where ``mask``."""
    rows = spreadsheet_rows(frame)[mask.to_numpy()]
    return pd.DataFrame({"row": rows, "column": column, "value": frame.loc[mask, column].astype(str).to_numpy(),
                         "why": why})
