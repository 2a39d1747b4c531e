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


def check_rows(frame: pd.DataFrame, columns: tuple[str, ...] = FEATURE_NAMES,
               scales: Mapping[str, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Convert ``columns`` of ``frame`` to floats in Spotify units and list every bad cell.

    Key accepts note names (``F#``, ``Gb``), mode ``major``/``minor``, duration
    ``m:ss`` text (always read as minutes:seconds). ``scales``: multiplier applied to
    plain numbers of a column before the range check (e.g. ``{"duration": 1000}`` for a
    length in seconds). Returns ``(values, problems)``: ``values`` has the same index as ``frame`` and one
    float column per characteristic, NaN where the cell is bad; ``problems`` has columns
    ``row`` (spreadsheet row), ``column``, ``value``, ``why``. Vectorised: 100k rows in ms.
    """
    values = pd.DataFrame(index=frame.index)
    problem_parts = []
    positions = np.arange(len(frame)) + FIRST_DATA_ROW
    for name in columns:
        raw = frame[name]
        scale = (scales or {}).get(name, 1.0)
        plain = _plain_numbers(raw)
        if plain is not None:  # the usual case: every cell a number or empty
            numbers, missing = pd.Series(plain * scale, index=frame.index), raw.isna()
        else:
            numbers = _to_numbers(name, raw, scale)
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
    try:
        return raw.to_numpy(dtype=object, na_value=np.nan).astype(np.float64)
    except (ValueError, TypeError, OverflowError):
        return None


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
    rows = np.flatnonzero(mask.to_numpy()) + FIRST_DATA_ROW
    return pd.DataFrame({"row": rows, "column": column, "value": frame.loc[mask, column].astype(str).to_numpy(),
                         "why": why})
