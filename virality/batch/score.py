"""Scoring a CSV of tracks: every row kept, bad rows explained, good rows scored.

``score_file`` (``python -m virality score``) streams the file in chunks of
``SCORE_CHUNK_ROWS`` rows, so memory stays bounded whatever the file's length, and writes
exactly the bytes one pass over the whole file would: every row's score is computed in
forward passes of a whole ``CHUNK_ROWS`` rows (``predict_rows``), so it does not depend on
which rows share its pass. The output goes to a temporary file beside OUT, renamed into
place at the end; OUT may not be the input file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from virality.data.columns import ColumnMap, DurationVotes, map_columns, read_values, require_all
from virality.data.errors import DataError, clipped
from virality.data.reading import Reading, Table, shown
from virality.data.validation import DECIMAL_COMMA, point_notation, reads_as_number, spreadsheet_rows
from virality.features import FEATURE_NAMES
from virality.model.prediction import CHUNK_ROWS, PREDICTION_COLUMNS, Predictor

PROBLEM_COLUMN = "problem"
FILLED_COLUMN = "filled"
MAX_FILLED_COLUMNS = 6  # filling more than half the characteristics would score a guess, not the file
OUTPUT_COLUMNS = (*PREDICTION_COLUMNS, FILLED_COLUMN, PROBLEM_COLUMN)
INPUT_SUFFIX = " (input)"
SCORE_CHUNK_ROWS = 50_000  # rows read, scored and written at a time by ``score_file``
SUMMARY_PROBLEMS = 20  # problems listed on stderr


@dataclass
class ScoreResult:
    """``table``: every input row and column plus the prediction columns and ``problem``
    (and ``filled`` when missing values were filled); same index as the input. ``problems``:
    one row per bad cell (``row``, ``column``, ``value``, ``why``). ``values``: (n, 12)
    characteristics in Spotify units as scored (NaN where bad). ``filled``: (n, 12) bool,
    True where a missing value took the typical track's value. ``columns``: how the input
    was mapped. ``renamed``: input columns named like a column virality adds (e.g. an
    earlier ``low``), kept under a new name → that name. ``reading``: how the file was read
    (None for a table made in code)."""

    table: pd.DataFrame
    problems: pd.DataFrame
    values: pd.DataFrame
    filled: pd.DataFrame
    columns: ColumnMap
    renamed: dict[str, str] = field(default_factory=dict)
    reading: Reading | None = None

    def renamed_note(self) -> str:
        """One sentence on the kept input columns ("" when none was renamed)."""
        return renamed_note(self.renamed)

    @property
    def n_scored(self) -> int:
        return int(self.table["predicted_popularity"].notna().sum())

    @property
    def scored(self) -> np.ndarray:
        """(n,) bool: rows that got a score."""
        return self.table["predicted_popularity"].notna().to_numpy()


def renamed_note(renamed: dict[str, str]) -> str:
    """One sentence on input columns kept under a new name ("" when none was renamed)."""
    if not renamed:
        return ""
    pairs = ", ".join(f"{shown(old)} → {shown(new)}" for old, new in renamed.items())
    return f"input column(s) named like a result column kept under a new name: {pairs}"


def plan_columns(frame: pd.DataFrame, fill: bool = False) -> ColumnMap:
    """The header checks of ``score_frame``: ``DataError`` for a repeated column name or, without
    ``fill`` (or with more than ``MAX_FILLED_COLUMNS`` absent), a missing characteristic."""
    repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if repeated:
        raise DataError(f"column name(s) {', '.join(map(shown, repeated[:5]))} appear more than once: "
                        "rename or remove the extra ones")
    columns = map_columns(frame)
    if not fill or len(columns.missing) > MAX_FILLED_COLUMNS:
        require_all(frame, columns)
    return columns


def score_frame(frame: pd.DataFrame, predictor: Predictor, fill: bool = False,
                reserved: tuple[str, ...] = (), columns: ColumnMap | None = None) -> ScoreResult:
    """Score a table of text cells (as ``read_csv_file`` returns it; row numbers in problems
    are ``virality.data.validation.spreadsheet_rows``).

    An input column named like one the result adds (``OUTPUT_COLUMNS`` and ``reserved``,
    e.g. ``low`` or a re-scored file's ``predicted_popularity``) is kept, renamed with
    ``INPUT_SUFFIX``, never overwritten.

    Columns are found by ``virality.data.columns.map_columns`` (``columns``: already found,
    for a file scored in chunks; the header checks are then the caller's). Without ``fill``
    a missing characteristic column raises ``DataError`` and rows with a missing cell are
    not scored; with ``fill`` missing cells and columns take the typical track's value and
    are flagged in ``filled`` (text in number cells and out-of-range values are never
    filled: they stay problems); more than ``MAX_FILLED_COLUMNS`` absent columns is a
    ``DataError`` even then.
    """
    if columns is None:
        columns = plan_columns(frame, fill)
        if frame.empty:
            raise DataError("the file has a header but no rows")
    frame, renamed = keep_input_columns(frame, (*OUTPUT_COLUMNS, *reserved))
    rows = spreadsheet_rows(frame)
    values, problems = read_values(frame, columns)
    filled = pd.DataFrame(False, index=frame.index, columns=list(FEATURE_NAMES))
    if fill:
        values, problems, filled = fill_missing(values, problems, predictor.typical_song, columns, rows)
    values = values.reindex(columns=list(FEATURE_NAMES))
    good = values.notna().all(axis=1).to_numpy()
    result = frame.copy()
    result.attrs = {}  # how the file was read is ``ScoreResult.reading``, not a property of the table
    predictions = np.full((len(frame), len(PREDICTION_COLUMNS)), np.nan)
    if good.any():
        predictions[good] = np.column_stack(predict_rows(predictor, values.to_numpy(np.float64)[good]))
    for position, column in enumerate(PREDICTION_COLUMNS):
        result[column] = pd.Series(predictions[:, position], index=frame.index).round(3)
    if fill:
        result[FILLED_COLUMN] = _filled_text(filled)
    result[PROBLEM_COLUMN] = _problem_text(problems, frame.index, rows)
    return ScoreResult(table=result, problems=problems, values=values, filled=filled, columns=columns,
                       renamed=renamed, reading=frame.attrs.get("reading"))


def predict_rows(predictor: Predictor, X: np.ndarray) -> tuple[np.ndarray, ...]:
    """(n, 12) valid characteristics → (score, low, high, percentile, tiktok_fit), each (n,).

    The rows go through the model in whole passes of ``CHUNK_ROWS`` (the last one padded with
    copies of the last row): the CPU's matrix kernels round a row in a part-filled block
    differently (by up to 1e-5 points), and a row's score must not depend on how many rows
    share its pass — or scoring a file in chunks would change a rounded score now and then."""
    size = -(-len(X) // CHUNK_ROWS) * CHUNK_ROWS
    padded = np.concatenate([X, np.repeat(X[-1:], size - len(X), axis=0)]) if size > len(X) else X
    columns = (*predictor.predict_columns(padded), predictor.fit_percent(padded))
    return tuple(column[:len(X)] for column in columns)


def keep_input_columns(frame: pd.DataFrame, reserved: tuple[str, ...]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Rename input columns whose name is in ``reserved`` to ``<name> (input)`` (then
    ``(input 2)``… if that is taken too). Returns the frame and {old name: new name}."""
    taken = {str(c) for c in frame.columns}
    renamed = {}
    for column in frame.columns:
        if str(column) in reserved:
            new, n = f"{column}{INPUT_SUFFIX}", 2
            while new in taken:
                new, n = f"{column} (input {n})", n + 1
            renamed[column] = new
            taken.add(new)
    return (frame.rename(columns=renamed) if renamed else frame), renamed


def fill_missing(values: pd.DataFrame, problems: pd.DataFrame, typical: dict[str, float],
                 columns: ColumnMap, rows: np.ndarray | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fill empty cells and absent characteristic columns with ``typical`` values.

    ``rows``: (n,) the spreadsheet row of each row of ``values`` (default: position + 2).
    Returns ``(values, problems, filled)``: all 12 columns, the problems that remain
    (everything but ``missing``: text and out-of-range cells are reported, never filled),
    and the (n, 12) bool mask of filled cells.
    """
    rows = spreadsheet_rows(values) if rows is None else rows
    values = values.reindex(columns=list(FEATURE_NAMES))
    filled = pd.DataFrame(False, index=values.index, columns=list(FEATURE_NAMES))
    for name in columns.missing:
        filled[name] = True
    characteristic_of = {source: name for name, source in columns.sources.items()}
    empty = problems[problems["why"] == "missing"]
    positions = np.searchsorted(rows, empty["row"].to_numpy())
    for name in FEATURE_NAMES:
        chosen = positions[(empty["column"].map(characteristic_of) == name).to_numpy()]
        filled.iloc[chosen, FEATURE_NAMES.index(name)] = True
    typical_row = np.array([typical[n] for n in FEATURE_NAMES], dtype=float)
    values = pd.DataFrame(np.where(filled.to_numpy(), typical_row, values.to_numpy(float)), index=values.index,
                          columns=list(FEATURE_NAMES))
    return values, problems[problems["why"] != "missing"].reset_index(drop=True), filled


def _filled_text(filled: pd.DataFrame) -> pd.Series:
    """Per row, ``"tempo, key"``: the characteristics that took the typical value."""
    names = np.array(filled.columns, dtype=object)
    mask = filled.to_numpy()
    text = pd.Series("", index=filled.index, dtype=object)
    rows = np.flatnonzero(mask.any(axis=1))
    text.iloc[rows] = [", ".join(names[mask[i]]) for i in rows]
    return text


def _problem_text(problems: pd.DataFrame, index: pd.Index, rows: np.ndarray) -> pd.Series:
    """Per input row, ``"tempo: not a number ('fast'); key: missing"`` or empty. ``rows``:
    the spreadsheet row of each position of ``index``."""
    text = pd.Series("", index=index, dtype=object)
    if problems.empty:
        return text
    described = problems.assign(
        text=problems["column"] + ": " + problems["why"]
        + np.where(problems["why"] == "missing", "", " (" + problems["value"].map(shown) + ")"))
    joined = described.groupby("row")["text"].agg("; ".join)
    text.iloc[np.searchsorted(rows, joined.index.to_numpy())] = joined.to_numpy()
    return text


# ---------------------------------------------------------------- formula cells


FORMULA_START = re.compile(r"^[=+\-@\t\r]")
FORMULA_CHARACTERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(table: pd.DataFrame, decimal: str = ".") -> pd.DataFrame:
    """A copy where every text cell (and header) that a spreadsheet would run as a formula
    (starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return) gets a leading ``'``
    (OWASP CSV injection advice). Cells that are numbers in the file's own notation (what
    ``check_rows`` reads as a number: ``-6.2``, ``-1e3``; ``-7,8`` when ``decimal`` is ``","``)
    and number columns are left exactly as they are."""
    safe = table.copy(deep=False)
    headers = pd.Series([str(c) for c in safe.columns], dtype=object)
    risky_headers = _formula_like(headers, decimal)
    if risky_headers.any():
        safe.columns = ["'" + h if risky else c for c, h, risky in zip(safe.columns, headers, risky_headers)]
    for position, (_, cells) in enumerate(safe.items()):
        if not (cells.dtype == object or pd.api.types.is_string_dtype(cells)):
            continue
        risky = _formula_like(cells, decimal)
        if risky.any():
            text = cells.astype(object)
            safe.isetitem(position, text.where(~risky, "'" + text.where(risky, "").astype(str)))
    return safe


def _formula_like(cells: pd.Series, decimal: str) -> pd.Series:
    """(n,) bool: text cells starting like a formula that are not numbers in the notation."""
    starts = cells.str.startswith(FORMULA_CHARACTERS) if pd.api.types.is_string_dtype(cells) else None
    if starts is None or starts.dtype != bool:
        text = cells.astype(object)
        is_text = text.map(type) == str  # noqa: E721 — exact type test, vectorised per column
        starts = is_text & text.where(is_text, "").astype(str).str.match(FORMULA_START)
    risky = starts.fillna(False).astype(bool)
    if not risky.any():
        return risky
    candidates = cells[risky].astype(object)
    if decimal == DECIMAL_COMMA:
        candidates = point_notation(candidates)
    numbers = pd.Series(reads_as_number(candidates), index=candidates.index)
    return risky & ~numbers.reindex(cells.index, fill_value=False)


# ---------------------------------------------------------------- the score command


@dataclass
class ScoreSummary:
    """What ``score_file`` did, for its stderr lines: rows (blank ones not counted), rows
    scored, rows with filled values, rows and cells with problems (the first
    ``SUMMARY_PROBLEMS`` problems kept), how columns were mapped and renamed, how the file
    was read."""

    columns: ColumnMap
    reading: Reading
    n_rows: int = 0
    n_scored: int = 0
    n_filled: int = 0
    n_problem_rows: int = 0
    n_problems: int = 0
    renamed: dict[str, str] = field(default_factory=dict)
    first_problems: list[pd.DataFrame] = field(default_factory=list)

    def add(self, result: ScoreResult) -> None:
        self.n_rows += len(result.table)
        self.n_scored += result.n_scored
        if FILLED_COLUMN in result.table:
            self.n_filled += int((result.table[FILLED_COLUMN] != "").sum())
        self.n_problem_rows += int(result.problems["row"].nunique())
        kept = sum(len(p) for p in self.first_problems)
        if kept < SUMMARY_PROBLEMS and len(result.problems):
            self.first_problems.append(result.problems.head(SUMMARY_PROBLEMS - kept))
        self.n_problems += len(result.problems)
        self.renamed = result.renamed

    def problem_lines(self) -> list[str]:
        """``problem_summary`` of every problem of the file."""
        listed = pd.concat(self.first_problems, ignore_index=True) if self.first_problems else pd.DataFrame(
            columns=["row", "column", "value", "why"])
        return problem_summary(listed, SUMMARY_PROBLEMS, total=self.n_problems)


def score_file(in_path: str | Path, out_path: str | Path, predictor: Predictor, fill: bool = False,
               chunk_rows: int | None = None) -> ScoreSummary:
    """Read ``in_path``, score it ``chunk_rows`` rows at a time (default ``SCORE_CHUNK_ROWS``),
    write ``out_path`` (CSV, formula cells neutralised as in the Batch download). ``DataError``
    if unreadable, if ``out_path`` is ``in_path`` (by any path or link) or cannot be written;
    then no OUT is left behind (an older OUT stays as it was). The bytes written do not depend
    on ``chunk_rows``."""
    chunk_rows = chunk_rows or SCORE_CHUNK_ROWS
    refuse_same_file(in_path, out_path)
    with Table(in_path) as table:
        header = table.header_frame()
        columns = plan_columns(header, fill)
        columns = replace(columns, duration_unit=_duration_unit(table, columns, chunk_rows))
        summary = ScoreSummary(columns=columns, reading=table.reading)
        with atomic_output(out_path) as handle:
            for chunk in table.frames(chunk_rows):
                result = score_frame(chunk, predictor, fill=fill, columns=columns)
                with _writing(clipped(out_path)):
                    write_table(neutralise_formulas(result.table, columns.decimal), handle,
                                header=not summary.n_rows)
                summary.add(result)
            if not summary.n_rows:
                raise DataError("the file has a header but no rows")
        summary.reading = table.reading
    return summary


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
KEEP_FREED_BYTES = 256 << 20  # freed memory glibc keeps for the next chunk instead of returning it
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's largest M_MMAP_THRESHOLD on 64-bit systems


def reuse_freed_memory() -> None:
    """Let glibc keep freed memory for reuse (a process-wide setting: call it from the command).

    By default glibc returns memory to the system as soon as the top of the heap is free and
    serves large blocks from fresh mappings, so chunk after chunk the same buffers are faulted
    in and zeroed anew: 2,000,000 rows took 3.4× the page faults and about 20 % more CPU in
    chunks than in one pass (benchmarks/results/score_memory.md). Keeping up to
    ``KEEP_FREED_BYTES`` leaves the peak as it was: the next chunk reuses the same memory.
    Does nothing where there is no glibc."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)
    mallopt(M_TRIM_THRESHOLD, KEEP_FREED_BYTES)


def _duration_unit(table: Table, columns: ColumnMap, chunk_rows: int) -> str:
    """The duration column's unit from all its cells (a pass over the file only when the
    header does not say it)."""
    if "duration" not in columns.sources:
        return columns.duration_unit
    votes = DurationVotes(columns.sources["duration"], columns.decimal)
    if votes.fixed is None:
        for chunk in table.frames(chunk_rows):
            votes.add(chunk[columns.sources["duration"]])
    return votes.unit()


def refuse_same_file(in_path: str | Path, out_path: str | Path) -> None:
    """``DataError`` when ``out_path`` is ``in_path`` itself: the same path, another path to it,
    a hard or a symbolic link (same device and inode), so the input is never overwritten."""
    try:
        same = os.path.samefile(in_path, out_path)
    except (OSError, ValueError):  # OUT does not exist yet (or a path the OS refuses)
        return
    if same:
        raise DataError(f"the output {clipped(out_path)} is the input file {clipped(in_path)} (the same file): "
                        "choose another output path; the input was left as it is")


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[BinaryIO]:
    """A binary handle whose bytes become ``path`` only when the block ends without an error:
    they go to a temporary file beside ``path`` (through a symbolic link: beside its target),
    renamed over it at the end, so a crash or a full disk never leaves a half-written file
    over an older one. An existing ``path`` keeps its permissions. An existing ``path`` that
    is not a regular file (``/dev/stdout``, a pipe) is written directly: renaming over it
    would replace it."""
    shown_path = clipped(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as err:
        raise DataError(f"cannot write {shown_path}: {err.strerror or err}") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise DataError(f"cannot write {shown_path}: it is a folder")
    if info is not None and not stat.S_ISREG(info.st_mode):
        with _writing(shown_path):
            handle = open(path, "wb")  # noqa: SIM115 — closed below, after the caller's writes
        with handle:
            yield handle
        return
    target = Path(os.path.realpath(path))
    mode = stat.S_IMODE(info.st_mode) if info is not None else 0o666 & ~_umask()
    with _writing(shown_path):
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            with _writing(shown_path):
                handle.flush()
                os.fsync(handle.fileno())
        with _writing(shown_path):
            os.chmod(temporary, mode)
            os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def _writing(shown_path: str) -> Iterator[None]:
    """An ``OSError`` while writing → ``DataError`` naming the output."""
    try:
        yield
    except OSError as err:
        raise DataError(f"cannot write {shown_path}: {err.strerror or err}") from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_csv(table: pd.DataFrame, path: str | Path) -> None:
    """Write exactly the bytes of ``table.to_csv(path, index=False)`` (see ``write_table``)."""
    with open(path, "wb") as handle:
        write_table(table, handle)


def write_table(table: pd.DataFrame, handle: BinaryIO, header: bool = True) -> None:
    """Write to ``handle`` exactly the bytes of ``table.to_csv(index=False, header=header)``
    in UTF-8, faster (100k scored rows: see the stages in benchmarks/results/score.md): rows
    without a comma, quote or line break go through pyarrow's CSV writer unquoted, the
    others through Python's ``csv`` writer as pandas writes them. A column that is neither
    text nor float64, or no pyarrow: pandas writes the rows. Each row's bytes depend on that
    row alone, so a table written in parts equals the table written at once."""
    body = _fast_body(table)
    if body is None:
        handle.write(table.to_csv(index=False, header=header).encode("utf-8"))
        return
    if header:
        line = io.StringIO()
        csv.writer(line, lineterminator="\n").writerow([str(c) for c in table.columns])
        handle.write(line.getvalue().encode("utf-8"))
    handle.write(body)


NEEDS_QUOTES = '[,"\r\n]'  # what pyarrow refuses to write unquoted (pandas quotes all but a lone \r)


class _Lines(list):
    """A file for ``csv.writer`` that keeps each row's text (it writes one row per call)."""

    write = list.append


def _fast_body(table: pd.DataFrame) -> bytes | None:
    """The CSV rows of ``table`` (no header) as pandas writes them, or None (see ``write_csv``)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pa_csv
    except ImportError:
        return None
    if table.shape[1] < 2 or table.columns.duplicated().any():  # pandas quotes a lone empty cell
        return None
    try:
        arrays = [_text_array(cells, pa) for _, cells in table.items()]
        if any(a is None for a in arrays):
            return None
        quoted = np.zeros(len(table), dtype=bool)
        for array, dtype in zip(arrays, table.dtypes):
            if dtype != np.float64:  # number text never needs quotes
                quoted |= pc.match_substring_regex(array, NEEDS_QUOTES).fill_null(False).to_numpy(
                    zero_copy_only=False)
        sink = pa.BufferOutputStream()
        plain = pa.table(arrays, names=[f"c{i}" for i in range(len(arrays))])
        pa_csv.write_csv(plain.filter(pa.array(~quoted)) if quoted.any() else plain, sink,
                         pa_csv.WriteOptions(include_header=False, quoting_style="none"))
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a cell that is not text, or one arrow will not write
        return None
    body = sink.getvalue().to_pybytes()
    if not quoted.any():
        return body
    # every unquoted row is one line (no line breaks in it); the others, in place, as pandas writes them
    lines = np.empty(len(table), dtype=object)
    lines[~quoted] = np.array([line + b"\n" for line in body.split(b"\n")[:-1]], dtype=object)
    rows = pa.array(np.flatnonzero(quoted))
    rendered = _Lines()
    csv.writer(rendered, lineterminator="\n").writerows(
        zip(*[["" if v is None else v for v in a.take(rows).to_pylist()] for a in arrays]))
    lines[quoted] = np.array([line.encode("utf-8") for line in rendered], dtype=object)
    return b"".join(lines)


# ".0", ".001" … ".999": the fraction of a number of thousandths as its shortest text writes it
THOUSANDTHS = [".0"] + [f".{f:03d}".rstrip("0") for f in range(1, 1000)]
EXACT_BELOW = 1e12  # k/1000 below this has at most 15 significant digits: no other such decimal is the same double


def float_text(numbers: np.ndarray, pa):
    """(n,) float64 → arrow strings of Python's ``repr`` of each (the shortest text that reads
    back as the same double, as pandas writes floats), NaN → null.

    Scores are rounded to thousandths, and the double nearest to k/1000 (below
    ``EXACT_BELOW``) has one shortest text: k/1000 in positional notation, trailing zeros
    dropped (``52.345``, ``52.0``). Arrow puts those together 5× faster than ``repr`` number
    by number; every other value (−0.0, inf, 1e-05, 1e+16, 0.1234) takes ``repr``."""
    import pyarrow.compute as pc

    with np.errstate(invalid="ignore", over="ignore"):
        thousandths = np.rint(numbers * 1000)
        plain = ((np.abs(numbers) < EXACT_BELOW) & (thousandths / 1000 == numbers)
                 & ~((numbers == 0) & np.signbit(numbers)))
    k = np.where(plain, thousandths, 0).astype(np.int64)
    parts = [pc.cast(pa.array(np.abs(k) // 1000), pa.string()), pa.array(THOUSANDTHS).take(pa.array(np.abs(k) % 1000))]
    if (k < 0).any():
        parts.insert(0, pc.if_else(pa.array(k < 0), "-", ""))
    text = pc.binary_join_element_wise(*parts, "")
    missing = np.isnan(numbers)
    others = np.flatnonzero(~plain & ~missing)
    if len(others):
        text = text.to_numpy(zero_copy_only=False).astype(object)
        text[others] = [repr(v) for v in numbers[others].tolist()]
        return pa.array(text, type=pa.string(), mask=missing)
    return pc.if_else(pa.array(missing), pa.scalar(None, pa.string()), text) if missing.any() else text


def _text_array(cells: pd.Series, pa):
    """One column as pandas would print its cells: an arrow string array (null = empty
    cell), or None when pandas would format it otherwise (ints, float32, dates …)."""
    if cells.dtype == np.float64:
        return float_text(cells.to_numpy(np.float64), pa)
    if cells.dtype == object or pd.api.types.is_string_dtype(cells.dtype):
        return pa.array(cells, type=pa.string(), from_pandas=True)  # a cell that is not text → ArrowTypeError
    return None


def problem_summary(problems: pd.DataFrame, limit: int = SUMMARY_PROBLEMS, total: int | None = None) -> list[str]:
    """Human lines ``"row 5, tempo: not a number ('fast')"``, at most ``limit`` plus a tail.
    ``total``: how many problems there are when ``problems`` holds only the first ones."""
    lines = [f"row {r.row}, {r.column}: {r.why}" + ("" if r.why == "missing" else f" ({shown(r.value)})")
             for r in problems.head(limit).itertuples()]
    total = len(problems) if total is None else total
    if total > limit:
        lines.append(f"… and {total - limit} more problem(s)")
    return lines
