"""Batch: reading what users have, row validation, ranking, drivers, exports."""

import io
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cli import run
from tests.conftest import synthetic_tracks
from virality.batch.export import export_table, html_report, neutralise_formulas, to_csv_bytes
from virality.batch.ranking import DRIVER_COLUMNS, compare_tracks, filter_table, score_upload
from virality.batch.score import score_frame
from virality.data.columns import map_columns
from virality.data.demo import DEMO_CSV
from virality.data.reading import DataError, read_csv_file
from virality.features import FEATURE_NAMES, KEY_NAMES


def tracks_csv(n: int = 12, seed: int = 3) -> pd.DataFrame:
    """Invented tracks with a title and artist (text cells as a file would give them)."""
    frame = synthetic_tracks(n, seed=seed, duplicates=0).drop(columns=["track_id", "popularity", "playlist_name"])
    frame.insert(1, "artist", [f"Artist {i % 4}" for i in range(n)])
    return frame.rename(columns={"track_name": "title"}).astype(str)


def engine_scores(predictor, frame: pd.DataFrame) -> np.ndarray:
    return predictor.predict_frame(frame[list(FEATURE_NAMES)].astype(float))["predicted_popularity"].to_numpy()


def upload(frame: pd.DataFrame, **to_csv) -> bytes:
    return frame.to_csv(index=False, **to_csv).encode(to_csv.pop("encoding", "utf-8"))


# --- unusable files: one plain line, never a traceback -------------------------------------------

@pytest.mark.parametrize("content, message", [
    (b"", "empty"), (b"   \n\n", "empty"), (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary"),
])
def test_unreadable_uploads_raise_one_line(content, message, bundled):
    with pytest.raises(DataError, match=message) as caught:
        score_upload(content, "tracks.csv", bundled)
    assert "\n" not in str(caught.value)


def test_header_only_file(bundled):
    with pytest.raises(DataError, match="header but no rows"):
        score_upload(",".join(FEATURE_NAMES).encode() + b"\n", "tracks.csv", bundled)


def test_one_column_file_names_what_is_missing_and_hints_at_the_separator(bundled):
    data = b"danceability|energy|key\n0.5|0.5|5\n"
    with pytest.raises(DataError, match="missing column.*only one column"):
        score_upload(data, "tracks.csv", bundled)


def test_missing_characteristic_column_is_named(bundled):
    with pytest.raises(DataError, match="missing column.*tempo"):
        score_upload(upload(tracks_csv().drop(columns=["tempo"])), "t.csv", bundled)


# --- encodings, separators, workbooks -------------------------------------------------------------

@pytest.mark.parametrize("options", [
    {"sep": ";"}, {"sep": "\t"}, {"encoding": "utf-8-sig"}, {"encoding": "latin-1"}, {"sep": ";", "encoding": "latin-1"},
])
def test_separators_and_encodings_give_the_same_scores(options, bundled):
    frame = tracks_csv()
    frame.loc[0, "title"] = "Café Déjà Vu"
    data = frame.to_csv(index=False, sep=options.get("sep", ",")).encode(options.get("encoding", "utf-8"))
    read = read_csv_file(data, "t.csv")
    assert list(read.columns) == list(frame.columns)
    assert read["title"].iloc[0] == "Café Déjà Vu"
    result = score_frame(read, bundled)
    np.testing.assert_allclose(result.table["predicted_popularity"], engine_scores(bundled, frame), atol=1e-3)


def test_xlsx_workbook_reads_like_the_csv(tmp_path, bundled):
    frame = tracks_csv()
    path = tmp_path / "t.xlsx"
    frame.assign(**{n: frame[n].astype(float) for n in FEATURE_NAMES}).to_excel(path, index=False)
    result = score_frame(read_csv_file(path), bundled)
    np.testing.assert_allclose(result.table["predicted_popularity"], engine_scores(bundled, frame), atol=1e-3)
    assert result.table["title"].tolist() == frame["title"].tolist()


def test_a_zip_that_is_not_a_workbook_is_a_clear_error(bundled):
    with pytest.raises(DataError, match="not a readable .xlsx"):
        score_upload(b"PK\x03\x04" + b"\x00garbage" * 40, "t.csv", bundled)


# --- header variants and units ---------------------------------------------------------------------

def test_header_variants_are_mapped_and_reported():
    frame = tracks_csv().rename(columns={"danceability": "Danceability", "tempo": "Tempo (BPM)",
                                         "duration": "duration_ms", "key": "KEY", "loudness": " Loudness_dB "})
    read = read_csv_file(upload(frame), "t.csv")
    columns = map_columns(read)
    assert columns.missing == []
    assert columns.sources["tempo"] == "Tempo (BPM)" and columns.sources["loudness"] == "Loudness_dB"
    assert columns.extra == ["title", "artist"]
    report = columns.report().set_index("characteristic")
    assert report.loc["tempo", "column"] == "Tempo (BPM)"
    assert report.loc["duration", "read as"] == "milliseconds"


@pytest.mark.parametrize("header, convert, unit", [
    ("duration_ms", lambda ms: ms, "milliseconds"),
    ("duration", lambda ms: ms, "milliseconds"),
    ("duration_s", lambda ms: ms // 1000, "seconds"),
    ("duration", lambda ms: ms // 1000, "seconds"),
    ("Length", lambda ms: f"{ms // 60000}:{ms // 1000 % 60:02d}", "minutes:seconds"),
])
def test_duration_in_ms_seconds_or_minutes_seconds(header, convert, unit, bundled):
    frame = tracks_csv()
    whole_seconds = (frame["duration"].astype(int) // 1000) * 1000
    frame["duration"] = whole_seconds
    given = frame.drop(columns="duration").assign(**{header: whole_seconds.map(convert).astype(str)})
    result = score_frame(read_csv_file(upload(given), "t.csv"), bundled)
    assert result.columns.report().set_index("characteristic").loc["duration", "read as"].startswith(unit)
    np.testing.assert_array_equal(result.values["duration"], whole_seconds.astype(float))
    np.testing.assert_allclose(result.table["predicted_popularity"], engine_scores(bundled, frame), atol=1e-3)
    assert result.table[header].tolist() == given[header].tolist()  # the input cells are not rewritten


def test_key_names_and_mode_words_score_like_numbers(bundled):
    frame = tracks_csv()
    named = frame.copy()
    named["key"] = [KEY_NAMES[int(k)].split("/")[0].replace("♯", "#") for k in frame["key"]]
    named.loc[0, "key"] = "Db" if frame.loc[0, "key"] == "1" else named.loc[0, "key"]
    named["mode"] = frame["mode"].map({"1": "Major", "0": "minor"})
    result = score_frame(read_csv_file(upload(named), "t.csv"), bundled)
    assert result.problems.empty
    np.testing.assert_allclose(result.table["predicted_popularity"], engine_scores(bundled, frame), atol=1e-3)


# --- row validation and the fill option ----------------------------------------------------------

@pytest.fixture
def damaged() -> pd.DataFrame:
    frame = tracks_csv()
    frame.loc[1, "energy"] = ""
    frame.loc[2, "tempo"] = "fast"
    frame.loc[3, "loudness"] = "12"
    frame.loc[4, "key"] = "H#"
    frame.loc[5, "mode"] = "sideways"
    frame.loc[6, "duration"] = "3:75"
    return frame


def test_bad_cells_are_listed_and_good_rows_scored(damaged, bundled):
    result = score_upload(upload(damaged), "t.csv", bundled)
    problems = set(zip(result.problems["row"], result.problems["column"], result.problems["why"].str.split().str[0]))
    assert problems == {(3, "energy", "missing"), (4, "tempo", "not"), (5, "loudness", "outside"),
                        (6, "key", "not"), (7, "mode", "not"), (8, "duration", "not")}
    table = result.table.sort_index()
    assert table["predicted_popularity"].isna().tolist() == [i in range(1, 7) for i in range(len(damaged))]
    good = damaged.drop(index=range(1, 7))
    np.testing.assert_allclose(table["predicted_popularity"].dropna(), engine_scores(bundled, good), atol=1e-3)
    assert table[list(damaged.columns)].fillna("").to_numpy().tolist() == damaged.to_numpy().tolist()
    assert table.loc[4, "problem"].startswith("tempo: not a number")


def test_fill_uses_typical_values_flags_them_and_never_fills_bad_text(damaged, bundled):
    result = score_upload(upload(damaged.drop(columns="liveness")), "t.csv", bundled, fill=True)
    table = result.table.sort_index()
    assert (table["filled"].str.contains("liveness")).all()
    assert table.loc[3, "filled"] == "energy, liveness"
    expected_song = {n: float(damaged.loc[1, n]) for n in FEATURE_NAMES if n not in ("energy", "liveness")}
    expected_song.update(energy=bundled.typical_song["energy"], liveness=bundled.typical_song["liveness"])
    assert table.loc[3, "predicted_popularity"] == pytest.approx(bundled.predict_song(expected_song).score, abs=1e-3)
    assert table.loc[4:8, "predicted_popularity"].isna().all()  # text and out-of-range stay problems
    assert "missing" not in set(result.problems["why"])
    assert table.loc[3, "energy"] != table.loc[3, "energy"]  # the empty input cell is kept empty (NaN)


# --- result: ranks, drivers, round trip ------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_result(bundled):
    return score_upload(DEMO_CSV.read_bytes(), DEMO_CSV.name, bundled)


def test_rank_order_and_drivers_agree_with_the_attributions(demo_result):
    table = demo_result.table
    scores = table["predicted_popularity"].to_numpy()
    assert (np.diff(scores) <= 0).all() and table["rank"].tolist() == list(range(1, len(table) + 1))
    for row, attribution in demo_result.attributions.iterrows():
        ups = attribution.sort_values(ascending=False)
        downs = attribution.sort_values()
        assert table.loc[row, "up_1"] == ups.index[0] and attribution[table.loc[row, "up_1"]] > 0
        assert table.loc[row, "down_1"] == downs.index[0] and attribution[table.loc[row, "down_1"]] < 0
        assert table.loc[row, "up_2"] in ("", ups.index[1])


def test_drivers_sum_to_the_score_difference_from_the_typical_track(demo_result, bundled):
    typical = bundled.predict_song(bundled.typical_song).score
    gap = demo_result.table.loc[demo_result.attributions.index, "predicted_popularity"] - typical
    np.testing.assert_allclose(demo_result.attributions.sum(axis=1), gap, atol=1.0)


def test_download_round_trip_equals_the_engine(demo_result, bundled):
    downloaded = read_csv_file(to_csv_bytes(demo_result), "scored.csv")
    original = pd.read_csv(DEMO_CSV).rename(columns={"duration_ms": "duration"})
    merged = downloaded.merge(original[["title"]], on="title")
    assert len(merged) == len(original)
    songs = merged.rename(columns={"duration_ms": "duration"})[list(FEATURE_NAMES)].astype(float)
    expected = bundled.predict_frame(songs)
    for column in ("predicted_popularity", "low", "high", "percentile"):
        np.testing.assert_allclose(merged[column].astype(float), expected[column], atol=1e-3)
    assert set(DRIVER_COLUMNS) <= set(downloaded.columns) and "rank" in downloaded.columns


def test_compare_two_tracks(demo_result):
    first, second = demo_result.table.index[:2]
    summary, characteristics = compare_tracks(demo_result, first, second)
    assert summary.iloc[0].astype(float).tolist() == pytest.approx(
        demo_result.table.loc[[first, second], "predicted_popularity"].round(1).tolist())
    effects = [c for c in characteristics.columns if c.endswith("effect (points)")]
    assert len(characteristics) == 12 and len(effects) == 2
    np.testing.assert_allclose(characteristics[effects[0]], demo_result.attributions.loc[first].round(2))


def test_filter_by_text_and_score(demo_result):
    table = demo_result.table
    assert filter_table(table, "porch")["artist"].tolist() == ["Porch Fiction"]
    high = filter_table(table, min_score=50)
    assert (high["predicted_popularity"] >= 50).all()
    assert len(high) == int((table["predicted_popularity"] >= 50).sum())


# --- exports: formula neutralisation, HTML report -------------------------------------------------

def test_formula_cells_are_neutralised_but_numbers_are_not():
    table = pd.DataFrame({"title": ["=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)", "\tTab", "\rCR",
                                    "Plain", "-6.2"],
                          "loudness": [-6.2, -3.0, -1.5, -9.0, -4.0, -5.0, -7.0, -8.0],
                          "note": pd.array(["-5", "=1", None, "ok", "+7", "a=b", "-", "x"], dtype="str")})
    safe = neutralise_formulas(table)
    assert safe["title"].tolist() == ["'=HYPERLINK(\"http://x\")", "'+1+2", "'-2+3", "'@SUM(A1)", "'\tTab", "'\rCR",
                                      "Plain", "-6.2"]
    assert safe["loudness"].tolist() == table["loudness"].tolist()
    assert safe["note"].tolist()[:2] == ["-5", "'=1"] and pd.isna(safe["note"][2])
    assert safe["note"].tolist()[3:] == ["ok", "+7", "a=b", "'-", "x"]
    assert table["title"][0].startswith("=")  # the original is untouched


def test_download_neutralises_injected_titles(bundled):
    frame = tracks_csv(4)
    frame.loc[0, "title"] = "=cmd|' /C calc'!A0"
    result = score_upload(upload(frame), "t.csv", bundled)
    exported = export_table(result)
    assert "'=cmd|' /C calc'!A0" in exported["title"].tolist()
    negative = result.table["loudness"].reset_index(drop=True)
    assert negative.str.startswith("-").all() and exported["loudness"].tolist() == negative.tolist()
    assert not any(str(v).startswith("=") for v in pd.read_csv(io.BytesIO(to_csv_bytes(result)))["title"])


def test_html_report_is_self_contained_and_honest(bundled):
    frame = tracks_csv(6)
    frame.loc[0, "title"] = "<script>alert(1)</script>"
    result = score_upload(upload(frame), "t.csv", bundled)
    page = html_report(result, bundled, title="My tracks")
    assert not re.search(r"<(script|link|img)[^>]*\b(src|href)=", page)  # nothing fetched when opened
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js itself is inline
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)</script>" not in page
    assert f"typically {bundled.typical_error:.0f} points away" in page
    for title in frame["title"][1:]:
        assert title in page


def test_length_as_spreadsheet_time_of_day(bundled):
    frame = tracks_csv(4)
    frame["duration"] = ["185000", "0:03:05", "3:05", "1:02:03"]
    result = score_frame(read_csv_file(upload(frame), "t.csv"), bundled)
    assert result.values["duration"].tolist()[:3] == [185000.0] * 3
    assert result.problems[["row", "column"]].values.tolist() == [[5, "duration"]]  # 62 min is over 20:00


def test_fill_refuses_a_file_with_most_characteristics_absent(bundled):
    frame = tracks_csv(4)[["title", "danceability", "energy", "tempo"]]
    with pytest.raises(DataError, match="missing column"):
        score_upload(upload(frame), "t.csv", bundled, fill=True)


def test_formula_headers_are_neutralised_too():
    safe = neutralise_formulas(pd.DataFrame({"=1+1": ["a"], "-3": ["b"], "title": ["c"]}))
    assert list(safe.columns) == ["'=1+1", "-3", "title"]


def test_display_order_puts_the_verdict_first_and_keeps_every_column(demo_result):
    from virality.batch.ranking import display_order

    order = display_order(demo_result)
    assert order[:4] == ["rank", "title", "artist", "predicted_popularity"]
    assert sorted(order) == sorted(demo_result.table.columns)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=8), min_size=1, max_size=6))
def test_no_exported_text_cell_starts_a_formula_unless_it_is_a_number(cells):
    """A number is what the scorer reads as one: Python's ``float`` (in a decimal-comma file,
    after the comma becomes a point)."""
    def is_number(text: str, decimal: str) -> bool:
        if decimal == "," and text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")
        try:
            float(text)
        except ValueError:
            return False
        return True

    for decimal in (".", ","):
        safe = neutralise_formulas(pd.DataFrame({"title": pd.array(cells, dtype="str")}), decimal)["title"]
        for original, exported in zip(cells, safe):
            if re.match(r"^[=+\-@\t\r]", original) and not is_number(original, decimal):
                assert exported == "'" + original
            else:
                assert exported == original


def test_the_cli_reads_the_same_variants(tmp_path, bundled):
    frame = tracks_csv(6)
    frame["duration"] = (frame["duration"].astype(int) // 1000) * 1000
    given = frame.rename(columns={"tempo": "Tempo (BPM)", "duration": "Length"})
    given["Length"] = [f"{ms // 60000}:{ms // 1000 % 60:02d}" for ms in frame["duration"]]
    given["mode"] = frame["mode"].map({"1": "major", "0": "minor"})
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_bytes(given.to_csv(index=False, sep=";").encode("latin-1"))
    done = run("score", str(source), "-o", str(out))
    assert done.code == 0, done.stderr
    scored = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(scored.columns) == [*given.columns, "predicted_popularity", "low", "high", "percentile", "tiktok_fit", "problem"]
    np.testing.assert_allclose(scored["predicted_popularity"].astype(float), engine_scores(bundled, frame), atol=1e-3)
    assert scored["Length"].tolist() == given["Length"].tolist()


def test_repeated_header_or_an_extra_field_is_refused_not_guessed(bundled):
    header = ",".join([*FEATURE_NAMES, " tempo"])
    with pytest.raises(DataError, match=r"'tempo' appears 2 times \(columns 11, 13\)"):
        score_upload((header + "\n" + ",".join(["0.5"] * 13)).encode(), "t.csv", bundled)
    with pytest.raises(DataError, match="line 3"):
        score_upload((",".join(FEATURE_NAMES) + "\n" + ",".join(["0.5"] * 12) + "\n" + ",".join(["0.5"] * 13)).encode(),
                     "t.csv", bundled)


def test_input_columns_named_like_result_columns_are_kept_not_overwritten(bundled):
    """A label's sheet with its own chart ``rank`` and a ``low`` column (and already a
    ``low (input)``) scores, and every one of those cells comes back under a new name."""
    frame = tracks_csv(6)
    frame["rank"], frame["low"], frame["low (input)"] = [str(i) for i in range(6)], "keep me", "me too"
    result = score_upload(upload(frame), "chart.csv", bundled)
    table = result.table.sort_index()
    assert list(table["rank (input)"]) == list(frame["rank"])
    assert set(table["low (input 2)"]) == {"keep me"} and set(table["low (input)"]) == {"me too"}
    assert sorted(table["rank"].astype(int)) == list(range(1, 7))
    assert table["predicted_popularity"].to_numpy() == pytest.approx(engine_scores(bundled, frame), abs=1e-3)
    assert "'rank' → 'rank (input)'" in result.renamed_note and "'low' → 'low (input 2)'" in result.renamed_note


# --- as real files are (issue 13) -------------------------------------------------------------------

def test_the_download_never_alters_a_number_in_the_files_notation(bundled):
    """``-7,8`` in a semicolon file is a number: it used to come back as ``'-7,8``."""
    frame = tracks_csv(4)
    frame["loudness"] = frame["loudness"].str.replace(".", ",")
    frame.loc[0, "title"], frame.loc[1, "title"] = "-2+3", "=1+1"
    result = score_upload(upload(frame, sep=";"), "t.csv", bundled)
    assert result.n_scored == 4
    exported = export_table(result).set_index(result.table.index)
    assert exported.loc[result.table.index, "loudness"].tolist() == result.table["loudness"].tolist()
    assert exported.loc[2, "title"] == "'-2+3" and exported.loc[3, "title"] == "'=1+1"
    downloaded = pd.read_csv(io.BytesIO(to_csv_bytes(result)), dtype=str, encoding="utf-8-sig")
    assert sorted(downloaded["loudness"]) == sorted(frame["loudness"])


def test_a_blank_row_is_not_a_phantom_track_with_fill_on(bundled):
    frame = tracks_csv(3)
    text = frame.to_csv(index=False, sep=";")
    head, rest = text.split("\n", 2)[:2], text.split("\n", 2)[2]
    data = ("\n".join(head) + "\n" + ";" * (len(frame.columns) - 1) + "\n" + rest).encode()
    result = score_upload(data, "t.csv", bundled, fill=True)
    assert result.n_rows == 3 == result.n_scored and sorted(result.table.index) == [2, 4, 5]
    assert result.reading.blank_rows == 1 and (result.table["filled"] == "").all()


def test_unusual_tracks_get_predicts_out_of_distribution_flag(bundled):
    frame = tracks_csv(5)
    frame.loc[0, "loudness"] = "2.5"  # +2.5 dB: louder than 99.5 % of real tracks
    result = score_upload(upload(frame), "t.csv", bundled)
    table = result.table.sort_index()
    for row, cells in table.iterrows():
        song = {n: float(result.values.loc[row, n]) for n in FEATURE_NAMES}
        prediction = bundled.predict_song(song)
        expected = (", ".join(prediction.unusual) or "the combination of values") if prediction.out_of_distribution else ""
        assert cells["unusual"] == expected
    assert "loudness" in table.loc[2, "unusual"] and result.n_unusual >= 1
    assert "unusual" in export_table(result).columns
    assert "<th>unusual (a guess)</th>" in html_report(result, bundled)


def test_the_files_own_popularity_is_compared_by_rank_correlation(bundled):
    from scipy.stats import spearmanr

    from virality.batch.ranking import display_order, popularity_check

    frame = tracks_csv(12)
    frame["Popularity"] = [str(v) for v in (5, 60, 33, 33, 80, 12, 47, 91, 20, 64, 70, 3)]
    frame.loc[4, "Popularity"] = "n/a"
    result = score_upload(upload(frame), "t.csv", bundled)
    check = popularity_check(result)
    table = result.table
    usable = table["Popularity"] != "n/a"
    expected = spearmanr(table.loc[usable, "Popularity"].astype(float), table.loc[usable, "predicted_popularity"])[0]
    assert check.column == "Popularity" and check.n_tracks == 11
    assert check.spearman == pytest.approx(expected, abs=1e-12)
    order = display_order(result)
    assert order[order.index("predicted_popularity") + 1] == "Popularity"
    assert popularity_check(score_upload(upload(tracks_csv(4)), "t.csv", bundled)) is None


def test_the_filtered_download_holds_the_filtered_rows_only(demo_result):
    shown = filter_table(demo_result.table, "porch")
    downloaded = pd.read_csv(io.BytesIO(to_csv_bytes(demo_result, shown.index)), encoding="utf-8-sig")
    assert downloaded["artist"].tolist() == ["Porch Fiction"]
    assert len(pd.read_csv(io.BytesIO(to_csv_bytes(demo_result)), encoding="utf-8-sig")) == demo_result.n_rows


def test_a_header_below_a_title_keeps_spreadsheet_row_numbers_in_problems(bundled):
    frame = tracks_csv(4)
    frame.loc[2, "tempo"] = "fast"
    result = score_upload(b"Label sheet 2025\n\n" + upload(frame), "t.csv", bundled)
    assert result.problems[["row", "column"]].values.tolist() == [[6, "tempo"]]  # header on row 3
    assert sorted(result.table.index) == [4, 5, 6, 7]
