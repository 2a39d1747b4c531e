"""Reading a table file a user gives: CSV (comma, semicolon or tab) or ``.xlsx``, as text cells.

Every failure is a ``DataError`` with one plain line naming the file.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from virality.features import shown


class DataError(ValueError):
    """A data file that cannot be used at all (missing, empty, not a CSV, wrong columns)."""


def read_csv_file(source: str | Path | bytes, name: str | None = None) -> pd.DataFrame:
    """Read a CSV (or ``.xlsx``) as text columns; raise ``DataError`` with one plain line when unusable.

    ``source``: a path, or the file's bytes (an upload) with ``name`` for messages and the
    ``.xlsx`` check. Comma, semicolon or tab separated (sniffed from the first lines);
    UTF-8 with or without BOM, else Latin-1. Cells are text; empty cells are NaN.
    """
    data, name = _read_bytes(source, name)
    head = data[:4096]
    if not head.strip():
        raise DataError(f"{name}: the file is empty")
    if head.startswith(XLSX_MAGIC):
        raw = _read_xlsx(data, name)
    elif b"\x00" in head:
        raise DataError(f"{name}: this is a binary file, not a CSV")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
        try:
            # header=None: pandas would rename a repeated name (tempo.1) and, when a row has
            # one field more than the header, shift every value one column left
            raw = pd.read_csv(io.StringIO(text), header=None, dtype=str, keep_default_na=False, na_values=[""],
                              sep=_sniff_separator(text), engine="c", skipinitialspace=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as err:
            raise DataError(f"{name}: not a readable CSV ({str(err).splitlines()[0][:200]})") from None
    return _with_header(raw, name)


def _with_header(raw: pd.DataFrame, name: str) -> pd.DataFrame:
    """The first row as (stripped) column names; a name used twice is refused, naming the
    columns by position (first column = 1)."""
    header = ["" if pd.isna(c) else str(c).strip() for c in raw.iloc[0]] if len(raw) else []
    places: dict[str, list[int]] = {}
    for position, column in enumerate(header, start=1):
        if column:
            places.setdefault(column, []).append(position)
    repeated = {column: where for column, where in places.items() if len(where) > 1}
    if repeated:
        column, where = next(iter(repeated.items()))
        more = f" (and {len(repeated) - 1} more repeated name(s))" if len(repeated) > 1 else ""
        raise DataError(f"{name}: column name {shown(column)} appears {len(where)} times (columns "
                        f"{', '.join(map(str, where[:5]))}){more}: rename or remove the extra ones")
    frame = raw.iloc[1:].reset_index(drop=True)
    frame.columns = [column or f"Unnamed: {i}" for i, column in enumerate(header)]
    return frame


XLSX_MAGIC = b"PK\x03\x04"  # a zip archive: .xlsx workbooks are zipped XML


def _read_bytes(source: str | Path | bytes, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), name or "the upload"
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a CSV file")
    return path.read_bytes(), name or str(path)


def _sniff_separator(text: str) -> str:
    """The separator of the header line: the most frequent of comma, semicolon, tab."""
    header = text.lstrip("\n\r").split("\n", 1)[0]
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _read_xlsx(data: bytes, name: str) -> pd.DataFrame:
    """The first sheet of a workbook, every cell as text (numbers as Python prints them)."""
    try:
        frame = pd.read_excel(io.BytesIO(data), sheet_name=0, header=None, dtype=object, engine="openpyxl")
    except Exception as err:  # openpyxl raises zip, XML and key errors for non-workbooks
        raise DataError(f"{name}: a zip file that is not a readable .xlsx workbook ({type(err).__name__})") from None
    frame = frame.dropna(how="all")
    return frame.map(lambda v: v if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)).astype(object)
