"""Hostile input, property-based: the CSV reader, the column mapping and the song parser.

Each input ends in a clear error (``DataError`` / ``ValueError`` with a short message) or
a correct result — never another exception, never a hang. Correct means: a row is scored
exactly when each of its 12 cells passes the scalar ``check_value`` (an independent
oracle for the vectorised ``check_rows``), with the score ``predict_array`` gives.
Time is bounded by Hypothesis' per-example ``deadline`` and, for the big fixed cases, by
an alarm.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import string
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from virality.batch.score import PROBLEM_COLUMN, score_frame
from virality.data.reading import DataError, read_csv_file
from virality.features import BY_NAME, FEATURE_NAMES, check_value, load_song_arg, parse_song

FUZZ = settings(max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", 60)), deadline=timedelta(seconds=10), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MAX_MESSAGE = 400  # characters: an error is one readable line, whatever the input
HUGE = 1_000_000
VALID_ROW = [f"{BY_NAME[n].default:g}" for n in FEATURE_NAMES]  # the typical song, as a CSV row


@contextlib.contextmanager
def within(seconds: float):
    """Fail instead of hanging: raise ``TimeoutError`` after ``seconds`` (main thread)."""
    def expire(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def assert_clear(error: Exception) -> None:
    message = str(error)
    assert message and "\n" not in message and len(message) <= MAX_MESSAGE, message[:1000]


def csv_bytes_to_result(data: bytes, predictor):
    """Write ``data`` to a file, read and score it; ``(frame, result)`` or ``(None, error)``."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload.csv"
        path.write_bytes(data)
        try:
            frame = read_csv_file(path)
            return frame, score_frame(frame, predictor)
        except DataError as err:  # the only exception allowed out
            assert_clear(err)
            return None, err


def _plain_float(cell) -> float:
    try:
        return float(str(cell))
    except ValueError:
        raise ValueError("not a number") from None


def in_point_notation(cell: str, decimal: str) -> str:
    """The oracle's own reading of a decimal comma: in a file whose notation has one, a cell
    with exactly one comma and no point means the number with a point there."""
    if decimal == "," and cell.count(",") == 1 and "." not in cell:
        return cell.replace(",", ".")
    return cell


def assert_scored_correctly(frame: pd.DataFrame, result, predictor) -> None:
    """Every row kept (blank rows are not rows); a row scored iff ``check_value`` accepts all
    its cells (in the file's notation: semicolon-separated files write decimal commas);
    right score; problems named by the row's place in the file."""
    table = result.table
    assert len(table) == len(frame)
    pd.testing.assert_frame_equal(table[list(frame.columns)], frame)
    from virality.data.columns import map_columns

    reading = frame.attrs["reading"]
    assert reading.decimal == ("." if reading.separator == "," else ",")
    assert not any(frame.iloc[i].map(lambda c: pd.isna(c) or not str(c).strip()).all() for i in range(len(frame)))
    columns = map_columns(frame)
    column_of = dict(columns.sources)
    seconds = columns.duration_unit == "s"
    for position in range(len(frame)):
        song, failures, lenient = {}, [], False
        for name, column in column_of.items():
            cell = frame[column].iloc[position]
            try:
                if pd.isna(cell) or not str(cell).strip():
                    raise ValueError("missing")
                cell = in_point_notation(str(cell), reading.decimal)
                if ":" in str(cell):
                    if name != "duration":
                        raise ValueError("m:ss is only a length")
                    lenient = True  # m:ss / h:mm:ss lengths: the engine's own reading is trusted
                    continue
                if name == "duration" and seconds:
                    song[name] = check_value(name, _plain_float(cell) * 1000)
                else:
                    song[name] = check_value(name, str(cell))
            except ValueError:
                failures.append(column)
        score = table["predicted_popularity"].iloc[position]
        problem = table[PROBLEM_COLUMN].iloc[position]
        named = set(result.problems.loc[result.problems["row"] == frame.index[position], "column"])
        if lenient:
            named.discard(column_of["duration"])
        assert named == set(failures), (position, frame.iloc[position].to_dict(), named, failures)
        if lenient:
            continue
        if failures:
            assert math.isnan(score), (position, failures)
            assert all(f"{column}:" in problem for column in failures), (problem, failures)
        else:
            assert problem == "", problem
            expected = predictor.predict_array(np.array([[song[n] for n in FEATURE_NAMES]]))
            assert score == pytest.approx(round(float(expected["predicted_popularity"].iloc[0]), 3), abs=1e-3)
            assert 0 <= score <= 100


# --- strategies ---------------------------------------------------------------------

def number_text() -> st.SearchStrategy[str]:
    """Numbers the way files write them: plain, scientific, huge, tiny, signed, nan/inf."""
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.floats(-300, 300).map(lambda v: f"{v:.3f}"),
        st.integers(-(10 ** 40), 10 ** 40).map(str),
        st.sampled_from(["1e400", "-1e400", "1e-400", "4.9e-324", "NaN", "nan", "inf", "-Infinity", "0x10",
                         "1_000", " 0.5 ", "0,5", "+0.5", ".5", "5.", "1e5", "11", "C#", "Bb", "major",
                         "minor", "3:05", "١٢", "٠.٥", "½", "", "   "]),
    )


CELL = st.one_of(number_text(), st.text(max_size=12))


def cell_for(column: str) -> st.SearchStrategy[str]:
    """Mostly valid values for a characteristic column (so rows do get scored), else anything."""
    feature = BY_NAME.get("duration" if column == "duration_ms" else column)
    if feature is None:
        return CELL
    if feature.is_discrete:
        valid = st.integers(int(feature.low), int(feature.high)).map(str)
    else:
        valid = st.floats(feature.low, feature.high).map(lambda v: f"{v:.6g}")
    return st.one_of(valid, valid, valid, CELL)
EMOJI_OR_UNICODE = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8)
HEADER = st.one_of(st.sampled_from([*FEATURE_NAMES, "duration_ms", "title", "🎵 title", "Tempo", "tempo "]),
                   EMOJI_OR_UNICODE)


def write_csv(header: list[str], rows: list[list[str]], separator: str = ",") -> bytes:
    lines = [header, *rows]
    with tempfile.TemporaryFile("w+", newline="", encoding="utf-8") as handle:
        import csv

        csv.writer(handle, delimiter=separator).writerows(lines)
        handle.seek(0)
        return handle.read().encode("utf-8")


@st.composite
def tables(draw):
    """A header that usually has the 12 characteristics (sometimes shuffled, renamed,
    repeated, or with unicode extras) and a few rows of hostile cells."""
    header = list(FEATURE_NAMES)
    if draw(st.booleans()):
        header[header.index("duration")] = "duration_ms"
    header += draw(st.lists(HEADER, max_size=3))
    if draw(st.integers(0, 9)) == 0:
        header.remove(draw(st.sampled_from(header)))
    header = draw(st.permutations(header))
    row = st.tuples(*(cell_for(column) for column in header)).map(list)
    rows = draw(st.lists(row, max_size=6))
    return header, rows, draw(st.sampled_from([",", ";"]))


# --- the CSV reader and scorer --------------------------------------------------------

@FUZZ
@given(data=st.binary(max_size=3000))
def test_random_bytes_are_a_clear_error_or_a_correct_result(data, bundled):
    frame, result = csv_bytes_to_result(data, bundled)
    if frame is not None:
        assert_scored_correctly(frame, result, bundled)


def _with(name: str, cell: str) -> list[str]:
    return [cell if n == name else v for n, v in zip(FEATURE_NAMES, VALID_ROW)]


@FUZZ
@given(table=tables())
@example(table=(list(FEATURE_NAMES), [_with("tempo", "١٢٠"), _with("loudness", "\u00a0-6"),
                                      _with("key", "F♯/G♭"), _with("mode", "minor"), _with("energy", "٠.٥")], ","))
def test_hostile_cells_and_headers_are_a_clear_error_or_a_correct_result(table, bundled):
    header, rows, separator = table
    frame, result = csv_bytes_to_result(write_csv(header, rows, separator), bundled)
    stripped = [h.strip() for h in header]
    if frame is None:
        return
    assert len(set(filter(None, stripped))) == len(list(filter(None, stripped))), "a repeated name was accepted"
    if frame.attrs["reading"].header_row == 1:  # rows keep their place in the file; blank ones are left out
        assert frame.index.tolist() == [i + 2 for i, row in enumerate(rows) if any(c.strip() for c in row)]
    assert_scored_correctly(frame, result, bundled)


@FUZZ
@given(header=st.lists(HEADER, min_size=1, max_size=20))
def test_column_mapping_names_what_is_missing_or_repeated(header, bundled):
    """The mapper, through ``score_frame`` on a frame (the Batch page's path): a missing
    characteristic or a repeated column name is a ``DataError`` naming it."""
    frame = pd.DataFrame([["0.5"] * len(header)], columns=header)
    try:
        result = score_frame(frame, bundled)
    except DataError as err:
        assert_clear(err)
        repeated = frame.columns.duplicated().any()
        has_all = all(n in header or (n == "duration" and "duration_ms" in header) for n in FEATURE_NAMES)
        assert repeated or not has_all
        if not repeated:
            missing = [n for n in FEATURE_NAMES if n not in header and not (n == "duration" and "duration_ms" in header)]
            assert all(n in str(err) for n in missing)
        return
    assert len(result.table) == 1


HOSTILE_FILES = {
    "one column": b"tempo\n120\n98\n",
    "one column, no newline": b"a",
    "header only": ",".join(FEATURE_NAMES).encode(),
    "5,000 columns without the characteristics": (",".join(f"c{i}" for i in range(5000)) + "\n"
                                                  + ",".join("1" for _ in range(5000))).encode(),
    "5,000 columns with the characteristics": (",".join([*FEATURE_NAMES, *(f"c{i}" for i in range(4988))]) + "\n"
                                               + ",".join(VALID_ROW + ["x"] * 4988)).encode(),
    "1 MB single cell": b"notes\n" + b"x" * HUGE + b"\n",
    "1 MB cell in a characteristic": (",".join(FEATURE_NAMES) + "\n" + ",".join(["0.5"] * 11) + ",").encode()
                                     + b"9" * HUGE + b"\n",
    "1 MB header name": b"t" * HUGE + b"\n1\n",
    "emoji and unicode headers": ("🎵,é,中文,\u202e," + ",".join(FEATURE_NAMES) + "\n1,2,3,4,"
                                  + ",".join(VALID_ROW)).encode(),
    "repeated header": (",".join([*FEATURE_NAMES, "tempo"]) + "\n" + ",".join(["0.5"] * 13)).encode(),
    "repeated after trimming spaces": (",".join([*FEATURE_NAMES, " tempo"]) + "\n" + ",".join(["0.5"] * 13)).encode(),
    "one field more than the header": (",".join(FEATURE_NAMES) + "\n" + ",".join(["0.5"] * 13)).encode(),
    "huge and tiny numbers": (",".join(FEATURE_NAMES) + "\n" + ",".join(["1e308"] * 12) + "\n"
                              + ",".join(["-1e-320"] * 12) + "\n" + ",".join(["9" * 400] * 12)).encode(),
    "NaN and inf": (",".join(FEATURE_NAMES) + "\n" + ",".join(["nan"] * 12) + "\n" + ",".join(["inf"] * 12)).encode(),
    "UTF-16": ",".join(FEATURE_NAMES).encode("utf-16"),
    "unterminated quote": b'tempo\n"120\n',
    "only newlines": b"\n\n\r\n",
}


@pytest.mark.parametrize("name", HOSTILE_FILES)
def test_fixed_hostile_files(name, bundled):
    with within(60):
        frame, result = csv_bytes_to_result(HOSTILE_FILES[name], bundled)
    if frame is not None:
        assert_scored_correctly(frame, result, bundled)


def test_repeated_or_shifted_columns_are_refused_not_guessed(bundled):
    for name in ("repeated header", "repeated after trimming spaces"):
        frame, error = csv_bytes_to_result(HOSTILE_FILES[name], bundled)
        assert frame is None and "'tempo' appears 2 times" in str(error)
    frame, error = csv_bytes_to_result(HOSTILE_FILES["one field more than the header"], bundled)
    assert frame is None and "line 2" in str(error)


def test_one_column_file_is_read_as_one_column(bundled):
    frame, error = csv_bytes_to_result(HOSTILE_FILES["one column"], bundled)
    assert frame is None and "missing column(s) danceability" in str(error)
    frame, error = csv_bytes_to_result(HOSTILE_FILES["one column, no newline"], bundled)
    assert frame is None and "missing column" in str(error)


def test_a_valid_row_beside_hostile_columns_is_scored(bundled):
    frame, result = csv_bytes_to_result(HOSTILE_FILES["emoji and unicode headers"], bundled)
    assert list(frame.columns[:4]) == ["🎵", "é", "中文", "\u202e"]
    assert result.n_scored == 1


# --- the song JSON parser --------------------------------------------------------------

JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-(10 ** 500), 10 ** 500),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10), number_text())
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)), max_leaves=8)
SONG_KEY = st.one_of(st.sampled_from([*FEATURE_NAMES, "duration_ms"]), st.text(max_size=8))


def valid_song_or_clear_error(text: str) -> list[str] | None:
    """``load_song_arg(text)`` gives a valid song (its filled names are returned) or a clear
    ValueError (None is returned); anything else fails the test."""
    try:
        song, filled = load_song_arg(text)
    except ValueError as err:
        assert_clear(err)
        return None
    assert list(song) == list(FEATURE_NAMES)
    for name, value in song.items():
        feature = BY_NAME[name]
        assert math.isfinite(value) and feature.low <= value <= feature.high
        assert not feature.is_discrete or value == int(value)
    assert set(filled) <= set(FEATURE_NAMES)
    return filled


@FUZZ
@given(raw=st.dictionaries(SONG_KEY, st.one_of(JSON_LEAF, st.fixed_dictionaries({"value": JSON_LEAF}),
                                               JSON_VALUE), max_size=14))
def test_song_json_is_a_clear_error_or_a_valid_song(raw):
    filled = valid_song_or_clear_error(json.dumps(raw, allow_nan=True))
    if filled is None:
        return
    given_names = {("duration" if k == "duration_ms" else k) for k, v in raw.items()
                   if (v.get("value") if isinstance(v, dict) else v) is not None}
    assert set(filled) == set(FEATURE_NAMES) - given_names


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                      st.text(alphabet="{}[]\":,0123456789.eE-tempokyNaI ", max_size=200)))
def test_song_argument_text_is_a_clear_error_or_a_valid_song(text):
    valid_song_or_clear_error(text)


@pytest.mark.parametrize("text", [
    '{"tempo": 1' + "0" * 400 + "}",            # an int beyond float range
    '{"tempo": 1' + "0" * 5000 + "}",           # beyond Python's int-to-str digit limit
    '{"key": -1' + "0" * 400 + "}",
    '{"tempo": ' + "[" * 100_000 + "}",         # nesting beyond the recursion limit
    '{"tempo": "' + "x" * HUGE + '"}',          # a 1 MB value
    "x" * 5000,                                  # a "file name" too long for the OS
    "song.json\x00",
    '{"🎵": 1, "tempo": NaN}',
    '{"' + "k" * HUGE + '": 1}',
])
def test_hostile_song_arguments_are_short_clear_errors(text):
    with within(30), pytest.raises(ValueError) as caught:
        load_song_arg(text)
    assert_clear(caught.value)


def test_song_file_with_a_utf8_bom_is_read(tmp_path):
    """Windows editors (Notepad) save UTF-8 with a BOM."""
    path = tmp_path / "song.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"tempo": 128, "key": "F#"}).encode())
    song, filled = load_song_arg(str(path))
    assert song["tempo"] == 128.0 and song["key"] == 6.0 and "tempo" not in filled


def test_song_files_that_are_not_regular_files_or_too_big_are_refused_unopened(tmp_path):
    fifo = tmp_path / "song.json"
    os.mkfifo(fifo)
    with within(10), pytest.raises(ValueError, match="neither inline JSON nor a readable file"):
        load_song_arg(str(fifo))
    big = tmp_path / "big.json"
    big.write_text('{"tempo": 120' + " " * (2 << 20) + "}")
    with pytest.raises(ValueError, match="over 1024 KB"):
        load_song_arg(str(big))


def test_song_file_that_is_not_utf8_is_a_clear_error(tmp_path):
    path = tmp_path / "song.json"
    path.write_bytes(b"\xff\xfe{\x00")
    with pytest.raises(ValueError, match="not a UTF-8 text file"):
        load_song_arg(str(path))


@FUZZ
@given(song=st.fixed_dictionaries({n: st.one_of(st.floats(BY_NAME[n].low, BY_NAME[n].high),
                                                 st.integers(int(BY_NAME[n].low), int(BY_NAME[n].high)))
                                   for n in FEATURE_NAMES if not BY_NAME[n].is_discrete}))
def test_valid_values_are_kept_exactly(song):
    parsed, filled = parse_song(song)
    assert filled == ["key", "mode"]
    assert all(parsed[n] == float(v) for n, v in song.items())


def test_message_helper_never_prints_the_whole_input():
    with pytest.raises(ValueError) as caught:
        parse_song({string.ascii_letters * 10_000: 1})
    assert_clear(caught.value)
