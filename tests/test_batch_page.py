
import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import open_app
from virality.data.demo import DEMO_CSV
from virality.features import FEATURE_NAMES


@pytest.fixture
def page() -> AppTest:
    return open_app("pages/batch.py")


def ranked_table(at: AppTest) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "predicted_popularity" in getattr(d.value, "columns", []))


def track_box(at: AppTest, label: str):
    """The Compare panel's selectbox labelled ``label`` (its key changes with each file)."""
    return next(box for box in at.selectbox if box.label == label)


def test_demo_file_is_scored_ranked_and_downloadable(page, bundled):
    assert page.info and not page.dataframe
    page.button(key="batch_demo_button").click().run()
    assert not page.exception and not page.error
    table = ranked_table(page)
    demo = pd.read_csv(DEMO_CSV).rename(columns={"duration_ms": "duration"}).set_index("title")
    expected = bundled.predict_frame(demo[list(FEATURE_NAMES)])["predicted_popularity"]
    shown = table.set_index("title")["predicted_popularity"]
    np.testing.assert_allclose(shown.loc[expected.index], expected, atol=1e-3)
    assert table["rank"].tolist() == list(range(1, len(demo) + 1))
    assert {b.key for b in page.get("download_button")} == {"batch_download_csv", "batch_download_html"}
    assert len(page.get("plotly_chart")) == 2  # ranked chart and the comparison


def test_filter_and_comparison_follow_the_widgets(page):
    page.button(key="batch_demo_button").click().run()
    page.text_input(key="batch_filter").input("porch").run()
    assert ranked_table(page)["artist"].tolist() == ["Porch Fiction"]
    options = track_box(page, "Track B").options
    track_box(page, "Track B").select(options[-1]).run()
    summary = next(d.value for d in page.dataframe if "rank" in getattr(d.value, "index", []))
    assert summary.columns[1] == options[-1]


def test_broken_file_shows_an_error_and_the_page_keeps_running(page):
    page.file_uploader(key="batch_upload").set_value(("song.csv", b"\x89PNG\r\n\x1a\n\x00\x00binary" * 20,
                                                      "text/csv")).run()
    assert not page.exception
    assert any("binary" in e.value for e in page.error)
    page.file_uploader(key="batch_upload").set_value(("tracks.csv", DEMO_CSV.read_bytes(), "text/csv")).run()
    assert not page.exception and not page.error and len(ranked_table(page)) == 8


def test_bad_rows_are_listed_and_fill_flags_missing_cells(page):
    frame = pd.read_csv(DEMO_CSV, dtype=str)
    frame.loc[0, "tempo"] = "fast"
    frame.loc[1, "energy"] = None
    data = frame.to_csv(index=False, sep=";").encode("latin-1", errors="replace")
    page.file_uploader(key="batch_upload").set_value(("tracks.csv", data, "text/csv")).run()
    assert not page.exception
    problems = next(d.value for d in page.dataframe if "why" in getattr(d.value, "columns", []))
    assert set(zip(problems["row"], problems["column"])) == {(2, "tempo"), (3, "energy")}
    assert ranked_table(page)["predicted_popularity"].notna().sum() == 6
    page.toggle(key="batch_fill").set_value(True).run()
    table = ranked_table(page)
    assert table["predicted_popularity"].notna().sum() == 7
    assert table.set_index("artist").loc[frame.loc[1, "artist"], "filled"] == "energy"


def summary_columns(at: AppTest) -> list[str]:
    return list(next(d.value for d in at.dataframe if "rank" in getattr(d.value, "index", [])).columns)


def test_compare_panel_starts_afresh_with_each_file(page):
    """The Compare boxes kept the previous file's choice while the browser showed other names:
    each file gets its own boxes, on its first two tracks, named as the tracks compared."""
    frame = pd.read_csv(DEMO_CSV, dtype=str)
    page.file_uploader(key="batch_upload").set_value(("a.csv", DEMO_CSV.read_bytes(), "text/csv")).run()
    box = track_box(page, "Track B")
    box.select(box.options[5]).run()
    frame["title"] = [f"Other {i}" for i in range(len(frame))]
    page.file_uploader(key="batch_upload").set_value(("b.csv", frame.to_csv(index=False).encode(), "text/csv")).run()
    first, second = track_box(page, "Track A"), track_box(page, "Track B")
    assert first.index == 0 and second.index == 1 and second.options[1].startswith("Other ")
    assert summary_columns(page) == [first.options[0], second.options[1]]


def test_unusual_tracks_popularity_blank_rows_and_column_choices_are_on_the_page(page):
    frame = pd.read_csv(DEMO_CSV, dtype=str)
    frame.loc[0, "loudness"] = "2.5"
    frame["popularity"] = [str(10 * i) for i in range(len(frame))]
    frame["BPM"] = "99"
    text = frame.to_csv(index=False).replace("\n", "\n" + "," * (len(frame.columns) - 1) + "\n", 1)
    page.file_uploader(key="batch_upload").set_value(("t.csv", text.encode(), "text/csv")).run()
    assert not page.exception and not page.error
    table = ranked_table(page)
    assert table.set_index("title").loc[frame.loc[0, "title"], "unusual"].startswith("⚠ ") and "loudness" in \
        table.set_index("title").loc[frame.loc[0, "title"], "unusual"]
    columns = list(table.columns)
    assert columns[columns.index("predicted_popularity") + 1] == "popularity"
    warnings, infos = " ".join(w.value for w in page.warning), " ".join(i.value for i in page.info)
    assert "unlike the real tracks" in warnings and "More than one column means tempo" in warnings
    assert "Rank correlation (Spearman)" in infos and "1 blank row(s) skipped" in infos


def test_the_filter_offers_a_filtered_download_beside_the_full_one(page):
    page.button(key="batch_demo_button").click().run()
    page.text_input(key="batch_filter").input("porch").run()
    buttons = {b.key: b.proto.label for b in page.get("download_button")}
    assert buttons["batch_download_filtered"] == "Download the 1 filtered row (CSV)"
    assert buttons["batch_download_csv"] == "Download the ranked table: all 8 rows (CSV)"
    assert any("“filtered rows” downloads just those" in c.value for c in page.caption)
