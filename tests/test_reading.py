"""Reading files as real spreadsheets write them, and refusing the ones made to hurt.

Every file is made here (tmp_path or bytes); each case is bounded to seconds (an alarm
guards the ones that used to hang or run for minutes).
"""

from __future__ import annotations

import io
import os
import time
import zipfile

import numpy as np
import openpyxl
import pandas as pd
import pytest

from tests.test_fuzz import within
from virality.batch.score import score_frame
from virality.data import reading
from virality.data.columns import DurationVotes, map_columns
from virality.data.reading import DataError, read_csv_file
from virality.data.validation import check_rows, point_notation
from virality.features import BY_NAME, FEATURE_NAMES

HEADER = ["title", *FEATURE_NAMES]
TYPICAL = [f"{BY_NAME[n].default:g}" for n in FEATURE_NAMES]


def european_row(title: str, loudness: str = "-7,8") -> list[str]:
    """A track as Excel writes it in much of Europe: decimal commas."""
    return [title, "0,74", "0,64", "5", loudness, "1", "0,08", "0,12", "0", "0,12", "0,53", "122,5", "186000"]


def lines(rows: list[list[str]], separator: str = ";") -> str:
    return "".join(separator.join(row) + "\r\n" for row in rows)


# --- encodings -----------------------------------------------------------------------------------

@pytest.mark.parametrize("title", ["It’s “Live” — €5 … Œuvre", "naïve Zoë ½ ß"])
def test_windows_1252_text_comes_back_unchanged(title, bundled):
    data = lines([HEADER, european_row(title)]).encode("cp1252")
    frame = read_csv_file(data, "t.csv")
    assert frame.attrs["reading"].encoding == "cp1252"
    assert frame["title"].tolist() == [title]
    assert score_frame(frame, bundled).n_scored == 1


def test_bytes_windows_1252_leaves_undefined_fall_back_to_latin_1():
    data = b"title,note\nCaf\xe9,\x81\x8d\n"  # 0x81 and 0x8D have no Windows-1252 character
    frame = read_csv_file(data, "t.csv")
    assert frame.attrs["reading"].encoding == "latin-1"
    assert frame.iloc[0].tolist() == ["Café", "\x81\x8d"]


def test_utf8_with_and_without_bom_is_read_as_utf8():
    for data in ("title\nnaïve ’\n".encode(), "title\nnaïve ’\n".encode("utf-8-sig")):
        frame = read_csv_file(data, "t.csv")
        assert list(frame.columns) == ["title"] and frame["title"].tolist() == ["naïve ’"]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be"])
def test_excel_unicode_text_is_utf16_tab_separated_and_read(codec, bundled):
    """Excel's "Unicode Text": UTF-16 with a BOM, tab-separated, decimal commas."""
    text = lines([HEADER, european_row("Ça “va” 🎵")], "\t")
    data = (b"\xfe\xff" + text.encode("utf-16-be")) if codec == "utf-16-be" else text.encode("utf-16")
    frame = read_csv_file(data, "export.txt")
    assert frame.attrs["reading"].separator == "\t" and frame.attrs["reading"].decimal == ","
    assert frame["title"].tolist() == ["Ça “va” 🎵"]
    result = score_frame(frame, bundled)
    assert result.n_scored == 1 and result.values["loudness"].tolist() == [-7.8]


def test_nul_bytes_anywhere_mean_a_binary_file():
    data = (",".join(HEADER) + "\n").encode() + b"x" * 70_000 + b"\x00\x01"
    with pytest.raises(DataError, match="binary file"):
        read_csv_file(data, "t.csv")


# --- decimal commas --------------------------------------------------------------------------------

def test_decimal_commas_in_a_semicolon_file_are_numbers(bundled):
    frame = read_csv_file(lines([HEADER, european_row("A"), european_row("B", "-6.5")]).encode(), "t.csv")
    result = score_frame(frame, bundled)
    assert result.problems.empty
    assert result.values["loudness"].tolist() == [-7.8, -6.5]  # a point still reads as one
    assert result.values["tempo"].tolist() == [122.5, 122.5]
    point = [[c.replace(",", ".") for c in european_row(t)] for t in "AB"]
    expected = bundled.predict_frame(pd.DataFrame(point, columns=HEADER)[list(FEATURE_NAMES)].astype(float).assign(
        loudness=[-7.8, -6.5]))
    np.testing.assert_allclose(result.table["predicted_popularity"], expected["predicted_popularity"], atol=1e-3)
    assert result.table["loudness"].tolist() == ["-7,8", "-6.5"]  # cells kept as written


def test_a_comma_file_has_no_decimal_commas(bundled):
    row = european_row("A")
    data = (",".join(HEADER) + "\n" + ",".join(f'"{c}"' for c in row) + "\n").encode()
    result = score_frame(read_csv_file(data, "t.csv"), bundled)
    assert result.n_scored == 0 and "danceability: not a number ('0,74')" in result.table["problem"].iloc[0]


@pytest.mark.parametrize("cell, number", [("0,68", 0.68), ("-7,8", -7.8), (",5", 0.5), ("5,", 5.0), (" 1,25 ", 1.25),
                                          ("1.5", 1.5), ("1,2,3", None), ("1.000,5", None), ("x,y", None)])
def test_what_a_decimal_comma_is(cell, number):
    values, problems = check_rows(pd.DataFrame({"loudness": pd.array([cell], dtype="str")}), ("loudness",),
                                  decimal=",")
    if number is None:
        assert problems["why"].tolist() == ["not a number"] and problems["value"].tolist() == [cell]
    else:
        assert values["loudness"].tolist() == [number] and problems.empty
    assert point_notation(pd.Series([cell, None], dtype=object)).iloc[1] is None


def test_duration_in_seconds_with_decimal_commas_is_recognised(bundled):
    header = [*HEADER[:-1], "duration"]
    frame = read_csv_file(lines([header, [*european_row("A")[:-1], "186,5"]]).encode(), "t.csv")
    result = score_frame(frame, bundled)
    assert result.columns.duration_unit == "s" and result.values["duration"].tolist() == [186_500.0]


# --- a header below a title, blank rows ------------------------------------------------------------

def test_header_below_a_title_row_is_found_and_rows_keep_their_numbers(bundled):
    text = lines([["Label X — release plan 2025", "", ""], [], HEADER, european_row("A"),
                  european_row("B", "loud"), european_row("C")])
    frame = read_csv_file(text.encode(), "t.csv")
    assert frame.attrs["reading"].header_row == 3 and list(frame.columns) == HEADER
    assert frame.index.tolist() == [4, 5, 6]
    result = score_frame(frame, bundled)
    assert result.problems[["row", "column"]].values.tolist() == [[5, "loudness"]]


def test_title_line_with_a_comma_does_not_hide_a_semicolon_header():
    text = "Hits, 2025 edition\n" + lines([HEADER, european_row("A")])
    frame = read_csv_file(text.encode(), "t.csv")
    assert frame.attrs["reading"].separator == ";" and frame.attrs["reading"].header_row == 2
    assert frame["loudness"].tolist() == ["-7,8"]


def test_an_extra_field_below_a_title_names_its_line_in_the_file():
    text = "my tracks\n" + ",".join(FEATURE_NAMES) + "\n" + ",".join(TYPICAL) + "\n" + ",".join([*TYPICAL, "x"])
    with pytest.raises(DataError, match="line 4"):
        read_csv_file(text.encode(), "t.csv")


def test_blank_rows_are_skipped_counted_and_never_scored_even_with_fill(bundled):
    """A row of only separators (Excel's empty row) or spaces used to become a phantom track
    scored 52.3 with fill on."""
    text = lines([HEADER, european_row("A"), [""] * len(HEADER), ["  "] * len(HEADER), [], european_row("B")])
    frame = read_csv_file(text.encode(), "t.csv")
    reading_ = frame.attrs["reading"]
    assert frame.index.tolist() == [2, 6] and reading_.blank_rows == 3 and reading_.blank_examples == (3, 4, 5)
    assert "3 blank row(s) skipped, not scored (row 3, 4, 5)" in reading_.notes()
    result = score_frame(frame, bundled, fill=True)
    assert len(result.table) == 2 and result.n_scored == 2 and (result.table["filled"] == "").all()


def test_leading_spaces_in_text_are_kept_and_numbers_with_spaces_still_read(bundled):
    row = ["  Intro (live)", *[f" {v} " for v in TYPICAL]]
    frame = read_csv_file((",".join(HEADER) + "\n" + ",".join(row) + "\n").encode(), "t.csv")
    assert frame["title"].tolist() == ["  Intro (live)"] and frame["tempo"].tolist() == [" 122 "]
    result = score_frame(frame, bundled)
    assert result.n_scored == 1 and result.table["tempo"].tolist() == [" 122 "]


def test_two_columns_meaning_one_characteristic_are_named():
    frame = read_csv_file((",".join([*FEATURE_NAMES, "Tempo", "BPM", "Duration (s)"]) + "\n"
                           + ",".join([*TYPICAL, "90", "91", "186"]) + "\n").encode(), "t.csv")
    columns = map_columns(frame)
    # the first listed synonym wins (tempo before bpm), then the leftmost column
    assert columns.sources["tempo"] == "tempo" and columns.choices == {"tempo": ["Tempo", "BPM"],
                                                                        "duration": ["Duration (s)"]}
    assert columns.choice_notes() == ["three columns mean tempo: 'tempo' is read, 'Tempo', 'BPM' kept as it is",
                                      "two columns mean duration: 'duration' is read, 'Duration (s)' kept as it is"]
    report = columns.report().set_index("characteristic")
    assert report.loc["tempo", "also meant it (not read)"] == "Tempo, BPM"


def test_duration_unit_votes_in_parts_decide_as_the_median_of_all():
    rng = np.random.default_rng(4)
    for _ in range(200):
        n = int(rng.integers(1, 9))
        cells = pd.Series([str(v) for v in rng.choice([5_000.0, 9_999.0, 10_000.0, 12_000.0, 200.5], n)]
                          + ["x", None, "3:05"][:int(rng.integers(0, 4))], dtype=object, name="length")
        whole = DurationVotes("length")
        whole.add(cells)
        parts = DurationVotes("length")
        for start in range(0, len(cells), 2):
            parts.add(cells.iloc[start:start + 2])
        numbers = pd.to_numeric(cells.dropna(), errors="coerce").dropna()
        colons = cells.dropna().str.contains(":").mean() > 0.5
        median_rule = "m:ss" if colons else "s" if len(numbers) and np.median(numbers) < 10_000 else "ms"
        assert whole.unit() == parts.unit() == median_rule, cells.tolist()


# --- only regular files ----------------------------------------------------------------------------

def test_a_fifo_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "tracks.csv"
    os.mkfifo(fifo)
    with within(10), pytest.raises(DataError, match="named pipe.*only regular files"):
        read_csv_file(fifo)


def test_a_device_is_refused_before_reading_a_byte():
    with within(10), pytest.raises(DataError, match="/dev/zero: is a device"):
        read_csv_file("/dev/zero")


def test_a_folder_or_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        read_csv_file(tmp_path)
    long = tmp_path / ("x" * 200) / ("y" * 200) / "tracks.csv"
    with pytest.raises(DataError) as caught:
        read_csv_file(long)
    assert str(caught.value).endswith("tracks.csv: no such file") and len(str(caught.value)) < 230


# --- workbooks ---------------------------------------------------------------------------------

def workbook(rows: list[list]) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def with_sheet(data: bytes, sheet_xml: bytes | list[bytes]) -> bytes:
    """``data`` (a workbook) with its first sheet's XML replaced, written in parts (deflated)."""
    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as target:
        for item in source.infolist():
            if item.filename == "xl/worksheets/sheet1.xml":
                with target.open(item.filename, "w", force_zip64=True) as handle:
                    for part in sheet_xml if isinstance(sheet_xml, list) else [sheet_xml]:
                        handle.write(part)
            else:
                target.writestr(item, source.read(item))
    return out.getvalue()


SHEET_START = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'


def test_workbook_with_a_title_row_blank_rows_and_spaces(bundled):
    row = ["  Intro", 0.74, 0.64, 5, -7.8, 1, 0.08, 0.12, 0, 0.12, 0.53, 122.0, 186000]
    frame = read_csv_file(workbook([["Release plan"], [], HEADER, row, [], row]), "t.xlsx")
    assert frame.attrs["reading"].kind == "xlsx" and frame.attrs["reading"].header_row == 3
    assert frame.index.tolist() == [4, 6] and frame.attrs["reading"].blank_rows == 1
    assert frame["title"].tolist() == ["  Intro"] * 2 and frame["tempo"].tolist() == ["122"] * 2
    assert score_frame(frame, bundled).n_scored == 2


def test_zip_bomb_workbook_is_refused_before_decompression(monkeypatch):
    """Over ``MAX_XLSX_BYTES`` uncompressed: refused from the zip directory alone (the sheet is
    never opened, so it takes milliseconds however large it unpacks)."""
    block = b"<!--" + b"0" * (1 << 20) + b"-->"
    bomb = with_sheet(workbook([HEADER]), [SHEET_START, *[block] * (reading.MAX_XLSX_BYTES // len(block) + 2),
                                           b"<sheetData/></worksheet>"])
    assert len(bomb) < reading.MAX_XLSX_BYTES // 100  # highly compressed
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: pytest.fail("the bomb was opened"))
    start = time.perf_counter()
    with within(30), pytest.raises(DataError, match=r"unpacks to 2\d\d MB, over the limit of 256 MB"):
        read_csv_file(bomb, "bomb.xlsx")
    assert time.perf_counter() - start < 5


def test_a_sheet_stating_too_many_cells_is_refused_before_its_rows_are_read():
    sheet = SHEET_START + b'<dimension ref="A1:N200000"/><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>title' \
        b"</t></is></c></row></sheetData></worksheet>"
    with within(30), pytest.raises(DataError, match=r"over the limit of 2,000,000 cells.*200,000 rows × 14 columns"):
        read_csv_file(with_sheet(workbook([HEADER]), sheet), "big.xlsx")


def test_cells_are_counted_as_they_stream_when_the_size_is_not_stated(monkeypatch):
    monkeypatch.setattr(reading, "MAX_XLSX_CELLS", 1000)
    rows = b"".join(b'<row r="%d">' % r + b"".join(b'<c r="%s%d"><v>1</v></c>' % (bytes([65 + c]), r)
                                                  for c in range(10)) + b"</row>" for r in range(1, 201))
    sheet = SHEET_START + b"<sheetData>" + rows + b"</sheetData></worksheet>"
    with within(30), pytest.raises(DataError, match="more than 1,000 cells by row 101"):
        read_csv_file(with_sheet(workbook([HEADER]), sheet), "wide.xlsx")
