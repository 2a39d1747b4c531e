"""Scoring a CSV of tracks: every row kept, bad rows explained, good rows scored."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from virality.data.columns import ColumnMap, map_columns, read_values, require_all
from virality.data.reading import DataError, read_csv_file, shown
from virality.data.validation import FIRST_DATA_ROW
from virality.features import FEATURE_NAMES
from virality.model.prediction import PREDICTION_COLUMNS, Predictor

PROBLEM_COLUMN = "problem"
FILLED_COLUMN = "filled"
MAX_FILLED_COLUMNS = 6  # filling more than half the characteristics would score a guess, not the file
OUTPUT_COLUMNS = (*PREDICTION_COLUMNS, FILLED_COLUMN, PROBLEM_COLUMN)
INPUT_SUFFIX = " (input)"


@dataclass
class ScoreResult:
    """``table``: every input row and column plus the prediction columns and ``problem``
    (and ``filled`` when missing values were filled). ``problems``: one row per bad cell
    (``row``, ``column``, ``value``, ``why``). ``values``: (n, 12) characteristics in
    Spotify units as scored (NaN where bad). ``filled``: (n, 12) bool, True where a
    missing value took the typical track's value. ``columns``: how the input was mapped.
    ``renamed``: input columns named like a column virality adds (e.g. an earlier ``low``),
    kept under a new name → that name."""

    table: pd.DataFrame
    problems: pd.DataFrame
    values: pd.DataFrame
    filled: pd.DataFrame
    columns: ColumnMap
    renamed: dict[str, str] = field(default_factory=dict)

    def renamed_note(self) -> str:
        """One sentence on the kept input columns ("" when none was renamed)."""
        if not self.renamed:
            return ""
        pairs = ", ".join(f"{shown(old)} → {shown(new)}" for old, new in self.renamed.items())
        return f"input column(s) named like a result column kept under a new name: {pairs}"

    @property
    def n_scored(self) -> int:
        return int(self.table["predicted_popularity"].notna().sum())

    @property
    def scored(self) -> np.ndarray:
        """(n,) bool: rows that got a score."""
        return self.table["predicted_popularity"].notna().to_numpy()


def score_frame(frame: pd.DataFrame, predictor: Predictor, fill: bool = False,
                reserved: tuple[str, ...] = ()) -> ScoreResult:
    """Score a table of text cells (as ``read_csv_file`` returns it).

    An input column named like one the result adds (``OUTPUT_COLUMNS`` and ``reserved``,
    e.g. ``low`` or a re-scored file's ``predicted_popularity``) is kept, renamed with
    ``INPUT_SUFFIX``, never overwritten.

    Columns are found by ``virality.columns.map_columns``. Without ``fill`` a missing
    characteristic column raises ``DataError`` and rows with a missing cell are not
    scored; with ``fill`` missing cells and columns take the typical track's value and
    are flagged in ``filled`` (text in number cells and out-of-range values are never
    filled: they stay problems); more than ``MAX_FILLED_COLUMNS`` absent columns is a
    ``DataError`` even then.
    """
    repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if repeated:
        raise DataError(f"column name(s) {', '.join(map(shown, repeated[:5]))} appear more than once: "
                        "rename or remove the extra ones")
    columns = map_columns(frame)
    if not fill or len(columns.missing) > MAX_FILLED_COLUMNS:
        require_all(frame, columns)
    if frame.empty:
        raise DataError("the file has a header but no rows")
    frame, renamed = keep_input_columns(frame, (*OUTPUT_COLUMNS, *reserved))
    values, problems = read_values(frame, columns)
    filled = pd.DataFrame(False, index=frame.index, columns=list(FEATURE_NAMES))
    if fill:
        values, problems, filled = fill_missing(values, problems, predictor.typical_song, columns)
    values = values.reindex(columns=list(FEATURE_NAMES))
    good = values.notna().all(axis=1).to_numpy()
    result = frame.copy()
    predictions = pd.DataFrame(np.nan, index=frame.index, columns=PREDICTION_COLUMNS)
    if good.any():
        predictions.loc[good] = predictor.predict_frame(values[good]).to_numpy()
    for column in PREDICTION_COLUMNS:
        result[column] = predictions[column].round(3)
    if fill:
        result[FILLED_COLUMN] = _filled_text(filled)
    result[PROBLEM_COLUMN] = _problem_text(problems, frame)
    return ScoreResult(table=result, problems=problems, values=values, filled=filled, columns=columns,
                       renamed=renamed)


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
                 columns: ColumnMap) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fill empty cells and absent characteristic columns with ``typical`` values.

    Returns ``(values, problems, filled)``: all 12 columns, the problems that remain
    (everything but ``missing``: text and out-of-range cells are reported, never filled),
    and the (n, 12) bool mask of filled cells.
    """
    values = values.reindex(columns=list(FEATURE_NAMES))
    filled = pd.DataFrame(False, index=values.index, columns=list(FEATURE_NAMES))
    for name in columns.missing:
        filled[name] = True
    characteristic_of = {source: name for name, source in columns.sources.items()}
    empty = problems[problems["why"] == "missing"]
    positions = empty["row"].to_numpy() - FIRST_DATA_ROW
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


def _problem_text(problems: pd.DataFrame, frame: pd.DataFrame) -> pd.Series:
    """Per input row, ``"tempo: not a number ('fast'); key: missing"`` or empty."""
    text = pd.Series("", index=frame.index, dtype=object)
    if problems.empty:
        return text
    described = problems.assign(
        text=problems["column"] + ": " + problems["why"]
        + np.where(problems["why"] == "missing", "", " (" + problems["value"].map(shown) + ")"))
    joined = described.groupby("row")["text"].agg("; ".join)
    text.iloc[joined.index.to_numpy() - FIRST_DATA_ROW] = joined.to_numpy()
    return text


def score_file(in_path: str | Path, out_path: str | Path, predictor: Predictor, fill: bool = False) -> ScoreResult:
    """Read ``in_path``, score it, write ``out_path`` (CSV). ``DataError`` if unreadable."""
    result = score_frame(read_csv_file(in_path), predictor, fill=fill)
    try:
        write_csv(result.table, out_path)
    except OSError as err:
        raise DataError(f"cannot write {out_path}: {err.strerror}") from None
    return result


def write_csv(table: pd.DataFrame, path: str | Path) -> None:
    """Write exactly the bytes of ``table.to_csv(path, index=False)``, faster (100k scored
    rows: see the stages in benchmarks/results/score.md): rows without a comma, quote or
    line break go through pyarrow's CSV writer unquoted, the others through Python's ``csv``
    writer as pandas writes them. A column that is neither text nor float64, or no
    pyarrow: pandas writes the file."""
    body = _fast_body(table)
    if body is None:
        table.to_csv(path, index=False)
        return
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow([str(c) for c in table.columns])
    with open(path, "wb") as handle:
        handle.write(header.getvalue().encode("utf-8"))
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


def _text_array(cells: pd.Series, pa):
    """One column as pandas would print its cells: an arrow string array (null = empty
    cell), or None when pandas would format it otherwise (ints, float32, dates …)."""
    if cells.dtype == np.float64:
        numbers = cells.to_numpy(np.float64)
        # the shortest round-trip text (Python's repr = numpy's str, as pandas writes floats); NaN → empty
        return pa.array(list(map(repr, numbers.tolist())), type=pa.string(), mask=np.isnan(numbers))
    if cells.dtype == object or pd.api.types.is_string_dtype(cells.dtype):
        return pa.array(cells, type=pa.string(), from_pandas=True)  # a cell that is not text → ArrowTypeError
    return None


def problem_summary(problems: pd.DataFrame, limit: int = 20) -> list[str]:
    """Human lines ``"row 5, tempo: not a number ('fast')"``, at most ``limit`` plus a tail."""
    lines = [f"row {r.row}, {r.column}: {r.why}" + ("" if r.why == "missing" else f" ({shown(r.value)})")
             for r in problems.head(limit).itertuples()]
    if len(problems) > limit:
        lines.append(f"… and {len(problems) - limit} more problem(s)")
    return lines
