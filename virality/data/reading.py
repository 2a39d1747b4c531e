"""Reading a table file a user gives: CSV (comma, semicolon or tab) or ``.xlsx``, as text cells.

What real files hold, read as the user meant it:

- **encodings**: UTF-8 (with or without BOM), UTF-16 with a BOM (Excel's "Unicode Text":
  tab-separated), else Windows-1252 (’ € …), else Latin-1 for the bytes Windows-1252 leaves
  undefined;
- **decimal commas**: a file separated by semicolons or tabs writes ``0,68`` for 0.68 (see
  ``Reading.decimal``);
- **a title above the header**: the header is the row among the first ``HEADER_SEARCH_ROWS``
  that names the most characteristics; rows keep their spreadsheet numbers;
- **blank rows** are skipped and counted, never tracks;
- cells are kept exactly as written (leading spaces too); only header names are trimmed.

Bounded for any input: only regular files are opened (never a FIFO or a device), and an
``.xlsx`` is refused before decompression when it is larger than ``MAX_XLSX_BYTES``
uncompressed or holds more than ``MAX_XLSX_CELLS`` cells (docs/reliability.md). Every
failure is a ``DataError`` with one plain line naming the file.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import os
import re
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from virality.data.columns import characteristics_named
from virality.data.errors import DataError, clipped
from virality.data.validation import DECIMAL_COMMA
from virality.features import shown

__all__ = ["DataError", "Reading", "Table", "read_csv_file", "shown"]

XLSX_MAGIC = b"PK\x03\x04"  # a zip archive: .xlsx workbooks are zipped XML
MAX_XLSX_BYTES = 256 * 2**20  # uncompressed size of every part of a workbook together
MAX_XLSX_CELLS = 2_000_000  # cells of the first sheet: about 140,000 tracks of 14 columns
HEAD_BYTES = 1 << 16  # where the separator, the header row and the encoding's first look come from
BLOCK_BYTES = 1 << 20  # the encoding check reads the file in blocks of this size
HEADER_SEARCH_ROWS = 10  # a header below a title is looked for in this many first rows
BLANK_EXAMPLES = 5  # blank rows named in the note
SEPARATORS = (",", ";", "\t")
ENCODING_NAMES = {"utf-8": "UTF-8", "utf-16-le": "UTF-16", "utf-16-be": "UTF-16", "cp1252": "Windows-1252",
                  "latin-1": "Latin-1"}
BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


@dataclass(frozen=True)
class Reading:
    """How a file was read. ``kind``: ``"csv"`` or ``"xlsx"``; ``encoding``: a Python codec
    (``""`` for a workbook); ``separator``; ``decimal``: ``","`` when the file is separated
    by semicolons or tabs (then ``0,68`` is 0.68, and ``0.68`` still is too), else ``"."``;
    ``header_row``: the header's spreadsheet row (1 unless a title sits above it);
    ``blank_rows``: how many blank rows below the header were skipped, the first few of
    them in ``blank_examples``."""

    name: str
    kind: str = "csv"
    encoding: str = "utf-8"
    separator: str = ","
    decimal: str = "."
    header_row: int = 1
    blank_rows: int = 0
    blank_examples: tuple[int, ...] = ()

    def notes(self) -> list[str]:
        """Plain sentences on what was read differently from a plain one-header CSV."""
        notes = []
        if self.header_row > 1:
            notes.append(f"the header is row {self.header_row}; the row(s) above it are not tracks")
        if self.blank_rows:
            rows = ", ".join(map(str, self.blank_examples)) + (" …" if self.blank_rows > len(self.blank_examples) else "")
            notes.append(f"{self.blank_rows} blank row(s) skipped, not scored (row {rows})")
        return notes

    @property
    def encoding_name(self) -> str:
        return ENCODING_NAMES.get(self.encoding, self.encoding)


def read_csv_file(source: str | Path | bytes, name: str | None = None) -> pd.DataFrame:
    """Read a CSV (or ``.xlsx``) as text columns; raise ``DataError`` with one plain line when unusable.

    ``source``: a path, or the file's bytes (an upload) with ``name`` for messages. Cells are
    text exactly as written; empty cells are NaN. The index is each row's spreadsheet row
    (header = row 1 unless a title sits above it; blank rows are skipped, leaving gaps) and
    ``frame.attrs["reading"]`` is the ``Reading``.
    """
    with Table(source, name) as table:
        parts = list(table.frames())
        frame = pd.concat(parts) if len(parts) > 1 else parts[0] if parts else table.header_frame()
        frame.attrs["reading"] = table.reading
        return frame


@dataclass
class _Blanks:
    count: int = 0
    examples: list[int] = field(default_factory=list)

    def add(self, rows: np.ndarray) -> None:
        self.count += len(rows)
        self.examples += [int(r) for r in rows[:BLANK_EXAMPLES - len(self.examples)]]


class Table:
    """An opened table file: encoding, separator and header found; the rows read in one go or
    in chunks (``frames``), as often as needed. Use as a context manager."""

    def __init__(self, source: str | Path | bytes, name: str | None = None):
        self._handle, self.name = _open_source(source, name)
        self._blanks = _Blanks()
        self._sheet, self._start = None, 0
        try:
            head = self._handle.read(HEAD_BYTES)
            if not head[:4096].strip():
                raise DataError(f"{self.name}: the file is empty")
            if head.startswith(XLSX_MAGIC):
                self._sheet, self._layout = _read_xlsx(self._handle, self.name)
                self.columns = _with_header(self._sheet.iloc[0].tolist(), self.name)
            else:
                self._layout, self._start = _csv_layout(self._handle, head, self.name)
                self.columns = _with_header(self._csv_header(), self.name)
        except BaseException:
            self.close()
            raise

    @property
    def reading(self) -> Reading:
        """The file's ``Reading``, blank rows counted over the last pass of ``frames``."""
        return replace(self._layout, blank_rows=self._blanks.count, blank_examples=tuple(self._blanks.examples))

    def header_frame(self) -> pd.DataFrame:
        """No rows, the file's columns, ``attrs["reading"]``."""
        frame = pd.DataFrame(columns=self.columns, dtype=object)
        frame.attrs["reading"] = self.reading
        return frame

    def frames(self, rows: int | None = None) -> Iterator[pd.DataFrame]:
        """The data rows in frames of at most ``rows`` rows (``None``: one frame), text cells,
        index = spreadsheet row, blank rows skipped and counted in ``reading``; frames left
        empty by blank rows are not yielded. Raises ``DataError`` for a row the file cannot
        hold (e.g. more fields than the header)."""
        self._blanks = _Blanks()
        first_row = self._layout.header_row + 1
        for raw in self._raw_frames(rows):
            raw = raw.set_axis(np.arange(first_row, first_row + len(raw)), axis=0)
            first_row += len(raw)
            raw.columns = self.columns
            blank = _blank_rows(raw)
            if blank.any():
                self._blanks.add(raw.index.to_numpy()[blank])
                raw = raw[~blank]
            if len(raw):
                raw.attrs["reading"] = self.reading
                yield raw

    def _raw_frames(self, rows: int | None) -> Iterator[pd.DataFrame]:
        """Data rows (header dropped) as pandas reads them, before numbering."""
        if self._sheet is not None:
            body = self._sheet.iloc[1:]
            step = rows or max(len(body), 1)
            for start in range(0, len(body), step):
                yield body.iloc[start:start + step]
            return
        with self._parsing():
            if rows is None:
                yield pd.read_csv(self._handle, **self._csv_options()).iloc[1:]
                return
            with pd.read_csv(self._handle, chunksize=rows, **self._csv_options()) as parts:
                part = parts.get_chunk(rows + 1).iloc[1:]  # the first record is the header
                while len(part):
                    yield part
                    try:
                        part = parts.get_chunk(rows)
                    except StopIteration:
                        return

    def _csv_header(self) -> list:
        """The header row's cells, as pandas reads them."""
        with self._parsing():
            header = pd.read_csv(self._handle, nrows=1, **self._csv_options())
        return header.iloc[0].tolist() if len(header) else []

    @contextlib.contextmanager
    def _parsing(self) -> Iterator[None]:
        """From the header row on; pandas' errors → ``DataError`` naming the file."""
        self._handle.seek(self._start)
        try:
            yield
        except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, UnicodeDecodeError) as err:
            raise DataError(f"{self.name}: not a readable CSV ({self._parser_message(err)})") from None

    def _csv_options(self) -> dict:
        # header=None: pandas would rename a repeated name (tempo.1) and, when a row has one
        # field more than the header, shift every value one column left. No skipinitialspace:
        # a title's leading spaces are the user's (numbers with spaces still read as numbers).
        return dict(header=None, dtype=str, keep_default_na=False, na_values=[""], sep=self._layout.separator,
                    engine="c", skip_blank_lines=False, encoding=self._layout.encoding)

    def _parser_message(self, err: Exception) -> str:
        """pandas' first line, its line numbers counted from the top of the file."""
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        skipped = self._layout.header_row - 1
        if skipped:
            text = re.sub(r"line (\d+)", lambda m: f"line {int(m[1]) + skipped}", text)
        return text[:200]

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _blank_rows(frame: pd.DataFrame) -> np.ndarray:
    """(n,) bool: rows whose every cell is empty or only spaces. Each column is looked at only
    for the rows still blank so far, so a title column rules out almost every row at once."""
    blank = np.ones(len(frame), dtype=bool)
    for _, cells in frame.items():
        candidates = np.flatnonzero(blank)
        if not len(candidates):
            break
        some = cells.iloc[candidates]
        filled = some.notna().to_numpy()
        if filled.any():
            text = some[filled].astype(str)
            blank[candidates[filled]] = (text.str.strip() == "").to_numpy()
    return blank


def _open_source(source: str | Path | bytes, name: str | None) -> tuple[BinaryIO, str]:
    """A binary handle on the file, and its name for messages. A path must be a regular file:
    it is checked before opening (a FIFO is never opened, it could block forever) and again
    on the opened file (in case it was swapped in between)."""
    if isinstance(source, (bytes, bytearray)):
        return io.BytesIO(bytes(source)), name or "the upload"
    path = Path(source)
    shown_path = clipped(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{shown_path}: no such file") from None
    except OSError as err:
        raise DataError(f"{shown_path}: cannot be read ({err.strerror or err})") from None
    _require_regular(info, shown_path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise DataError(f"{shown_path}: cannot be read ({err.strerror or err})") from None
    try:
        _require_regular(os.fstat(fd), shown_path)
    except DataError:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb"), clipped(name) if name else shown_path


def _require_regular(info: os.stat_result, shown_path: str) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise DataError(f"{shown_path}: is a folder, not a CSV file")
    if not stat.S_ISREG(info.st_mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(info.st_mode) else \
            "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "not a regular file"
        raise DataError(f"{shown_path}: is {kind}, not a regular file: only regular files are read")


# ---------------------------------------------------------------- CSV


def _csv_layout(handle: BinaryIO, head: bytes, name: str) -> tuple[Reading, int]:
    """A CSV's ``Reading`` (encoding, separator, decimal mark, header row) and the byte
    offset of its header row."""
    encoding, bom = _encoding(handle, head, name)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head[bom:], final=False)
    if "\x00" in text:
        raise DataError(f"{name}: this is a binary file, not a CSV")
    complete = len(head) < HEAD_BYTES
    separator, header_index, offset = _find_header(text, complete)
    reading = Reading(name=name, encoding=encoding, separator=separator,
                      decimal=DECIMAL_COMMA if separator != "," else ".", header_row=header_index + 1)
    return reading, bom + len(text[:offset].encode(encoding))


def _encoding(handle: BinaryIO, head: bytes, name: str) -> tuple[str, int]:
    """(codec, BOM length). UTF-8 or UTF-16 with a BOM; else the first of UTF-8, Windows-1252
    that decodes the whole file (read in blocks); else Latin-1, which decodes any bytes."""
    for bom, codec in BOMS:
        if head.startswith(bom):
            if _decodes(handle, codec, len(bom), name):
                return codec, len(bom)
            if codec != "utf-8":
                raise DataError(f"{name}: starts like UTF-16 text but is not valid UTF-16")
            return _single_byte_encoding(handle, len(bom), name), len(bom)
    if b"\x00" in head:
        raise DataError(f"{name}: this is a binary file, not a CSV")
    if _decodes(handle, "utf-8", 0, name):
        return "utf-8", 0
    return _single_byte_encoding(handle, 0, name), 0


def _single_byte_encoding(handle: BinaryIO, start: int, name: str) -> str:
    return "cp1252" if _decodes(handle, "cp1252", start, name) else "latin-1"


def _decodes(handle: BinaryIO, codec: str, start: int, name: str) -> bool:
    """Whether the whole file from ``start`` is valid ``codec`` text (read in blocks, memory
    bounded); a NUL character means a binary file (``DataError``)."""
    handle.seek(start)
    decoder = codecs.getincrementaldecoder(codec)()
    try:
        for block in iter(lambda: handle.read(BLOCK_BYTES), b""):
            if "\x00" in decoder.decode(block):
                raise DataError(f"{name}: this is a binary file, not a CSV")
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _sniff_separator(text: str) -> str:
    """The separator of the header line: the most frequent of comma, semicolon, tab."""
    header = text.lstrip("\n\r").split("\n", 1)[0]
    counts = {sep: header.count(sep) for sep in SEPARATORS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _find_header(text: str, complete: bool) -> tuple[str, int, int]:
    """(separator, header row index from 0, character offset of the header row in ``text``).

    The header is the row among the first ``HEADER_SEARCH_ROWS`` naming the most
    characteristics (the earliest on a tie; the first non-blank row when none names any).
    The separator is the header line's (``_sniff_separator``) unless another one finds a
    header naming more characteristics (a title line above the header can hold a comma)."""
    sniffed = _sniff_separator(text)
    best = _header_row(text, sniffed, complete)
    if best[0] == 0 or best[1] != 0:
        for separator in SEPARATORS:
            if separator != sniffed:
                found = _header_row(text, separator, complete)
                if found[0] > best[0]:
                    sniffed, best = separator, found
    return sniffed, best[1], best[2]


def _header_row(text: str, separator: str, complete: bool) -> tuple[int, int, int]:
    """(characteristics named, row index, character offset) of the best header candidate."""
    consumed = [0]

    def lines() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            consumed[0] += len(line)
            yield line

    candidates = []  # (named, index, offset, blank)
    start = 0
    try:
        for index, record in zip(range(HEADER_SEARCH_ROWS), csv.reader(lines(), delimiter=separator)):
            if consumed[0] >= len(text) and not complete:
                break  # the row may go on past the part read
            candidates.append((characteristics_named(record), index, start, not any(c.strip() for c in record)))
            start = consumed[0]
    except csv.Error:  # a huge field or a stray quote: the header is the first row
        pass
    if not candidates:
        return 0, 0, 0
    named = max(c[0] for c in candidates)
    if named:
        return next(c[:3] for c in candidates if c[0] == named)
    return next((c[:3] for c in candidates if not c[3]), (0, 0, 0))


def _with_header(cells: list, name: str) -> list[str]:
    """The header row as (trimmed) column names; a name used twice is refused, naming the
    columns by position (first column = 1)."""
    header = ["" if pd.isna(c) else str(c).strip() for c in cells]
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
    return [column or f"Unnamed: {i}" for i, column in enumerate(header)]


# ---------------------------------------------------------------- .xlsx


def _read_xlsx(handle: BinaryIO, name: str) -> tuple[pd.DataFrame, Reading]:
    """The first sheet of a workbook from its header row on, every cell as text (numbers as
    pandas prints them: ``3`` for 3.0), index = Excel row; and its ``Reading``.

    Refused before anything is decompressed when the parts' uncompressed sizes add up to more
    than ``MAX_XLSX_BYTES`` or the sheet's stated size is over ``MAX_XLSX_CELLS`` cells; the
    cells are counted as they stream in too (the stated size may be missing or false)."""
    import openpyxl

    handle.seek(0)
    try:
        with zipfile.ZipFile(handle) as archive:
            unpacked = sum(item.file_size for item in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise DataError(f"{name}: a zip file that is not a readable .xlsx workbook ({type(err).__name__})") from None
    if unpacked > MAX_XLSX_BYTES:
        raise DataError(f"{name}: the workbook unpacks to {unpacked / 2**20:,.0f} MB, over the limit of "
                        f"{MAX_XLSX_BYTES // 2**20} MB (MAX_XLSX_BYTES): save the sheet as CSV")
    handle.seek(0)
    try:
        book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        try:
            rows = _sheet_rows(book.worksheets[0], name)
        finally:
            book.close()
    except DataError:
        raise
    except Exception as err:  # openpyxl raises zip, XML and key errors for non-workbooks
        raise DataError(f"{name}: a zip file that is not a readable .xlsx workbook ({type(err).__name__})") from None
    if not rows:
        raise DataError(f"{name}: the first sheet of the workbook is empty")
    width = max(len(r) for r in rows)
    records = [list(r) + [None] * (width - len(r)) for r in rows]
    header_index = _xlsx_header_index(records)
    frame = pd.DataFrame(records[header_index:], dtype=object)
    frame.index = np.arange(header_index + 1, header_index + 1 + len(frame))
    frame = frame.map(_xlsx_text).astype(object)
    return frame, Reading(name=name, kind="xlsx", encoding="", header_row=header_index + 1)


def _sheet_rows(sheet, name: str) -> list[tuple]:
    stated_rows, stated_columns = sheet.max_row, sheet.max_column  # from the sheet's <dimension>, if any
    if stated_rows and stated_columns and stated_rows * stated_columns > MAX_XLSX_CELLS:
        raise _too_many_cells(name, f"its stated size is {stated_rows:,} rows × {stated_columns:,} columns")
    rows, cells = [], 0
    for row in sheet.iter_rows(values_only=True):
        cells += len(row)
        if cells > MAX_XLSX_CELLS:
            raise _too_many_cells(name, f"more than {MAX_XLSX_CELLS:,} cells by row {len(rows) + 1:,}")
        rows.append(row)
    while rows and all(v is None for v in rows[-1]):  # formatting below the data, not rows
        rows.pop()
    return rows


def _too_many_cells(name: str, detail: str) -> DataError:
    return DataError(f"{name}: the first sheet is over the limit of {MAX_XLSX_CELLS:,} cells (MAX_XLSX_CELLS; "
                     f"{detail}): save it as CSV, which is read in chunks")


def _xlsx_header_index(records: list[list]) -> int:
    """The header row as ``_header_row`` finds it in a CSV."""
    first = records[:HEADER_SEARCH_ROWS]
    named = [characteristics_named(r) for r in first]
    if named and max(named):
        return named.index(max(named))
    return next((i for i, r in enumerate(first) if any(v is not None and str(v).strip() for v in r)), 0)


def _xlsx_text(value):
    """A cell as text the way pandas reads a workbook: whole floats as ints (``3``), others as
    Python prints them; empty → NaN."""
    if value is None:
        return np.nan
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
