"""Batch: upload a CSV (or pick the demo tracks); every track scored, ranked, explained."""

import hashlib

import streamlit as st

from ui.layout import chart, page_header
from ui.state import get_predictor
from virality.batch.export import EMPTY_CELL, html_report, model_error_words, to_csv_bytes
from virality.batch.plots import compare_figure, ranked_figure
from virality.batch.ranking import (
    DRIVERS_NOTE,
    RANK_COLUMN,
    BatchResult,
    compare_tracks,
    display_order,
    filter_table,
    score_upload,
)
from virality.data.demo import DEMO_CSV
from virality.data.reading import DataError
from virality.plotting import FILLED_CELL

STYLE_LIMIT = 2000  # highlight filled cells in tables up to this many rows (styling is slow)
DISPLAY_ROWS = 10_000  # rows sent to the browser; the downloads always hold every row
COMPARE_CHOICES = 1000  # tracks offered for the comparison (filter to reach others)

page_header("Batch", "Score, rank and compare a whole file of tracks — ready to download and share.")
predictor = get_predictor()


def _use_demo() -> None:
    st.session_state["batch_demo"] = True


pick, demo = st.columns([3, 1], vertical_alignment="bottom")
upload = pick.file_uploader("A CSV or Excel file of tracks (Spotify/Kaggle column names work)",
                            type=["csv", "txt", "xlsx"], key="batch_upload")
demo.button("Use the demo tracks", on_click=_use_demo, key="batch_demo_button", width="stretch")
fill = st.toggle("Fill missing characteristics with the typical track's value (every filled cell is flagged)",
                 key="batch_fill")

if upload is not None:
    name, data = upload.name, upload.getvalue()
elif st.session_state.get("batch_demo"):
    name, data = DEMO_CSV.name, DEMO_CSV.read_bytes()
else:
    st.info("Upload a file, or try the demo tracks. Each row needs the 12 characteristics (danceability, energy, "
            "key, loudness, mode, speechiness, acousticness, instrumentalness, liveness, valence, tempo, duration); "
            "other columns such as title or artist are kept.")
    st.stop()

job = (name, hashlib.sha256(data).hexdigest(), fill)
if st.session_state.get("batch_job") != job:
    bar = st.progress(0.0, text=f"Reading {name}…")
    try:
        outcome = score_upload(data, name, predictor, fill=fill, progress=lambda f, text: bar.progress(f, text=text))
    except DataError as err:
        outcome = str(err)
    bar.empty()
    st.session_state["batch_job"], st.session_state["batch_outcome"] = job, outcome
outcome = st.session_state["batch_outcome"]
if isinstance(outcome, str):
    st.error(f"This file cannot be scored: {outcome}")
    st.stop()
result: BatchResult = outcome

(st.success if result.n_scored else st.warning)(f"**{name}**: scored {result.n_scored:,} of {result.n_rows:,} tracks.")
if result.renamed_note:
    st.info(result.renamed_note[0].upper() + result.renamed_note[1:] + ".")
with st.expander("How your columns were read", expanded=bool(result.columns.missing)):
    st.dataframe(result.columns.report(), hide_index=True, key="batch_mapping", placeholder=EMPTY_CELL)
    if result.columns.extra:
        st.caption("Kept as they are: " + ", ".join(map(str, result.columns.extra)))
    if result.columns.missing:
        st.warning("Not found, filled with the typical track's value: " + ", ".join(result.columns.missing))
if len(result.problems):
    st.warning(f"{result.n_rows - result.n_scored:,} row(s) not scored: nothing was changed, fix these cells "
               "and upload again (row numbers as in a spreadsheet, header = row 1).")
    st.dataframe(result.problems, hide_index=True, key="batch_problems", placeholder=EMPTY_CELL)
if "filled" in result.table and (result.table["filled"] != "").any():
    n_filled = int((result.table["filled"] != "").sum())
    st.info(f"{n_filled:,} track(s) had missing values filled with the typical track's value: see the "
            "**filled** column (their scores lean on a guess).")

st.subheader("Ranked tracks")
text_col, score_col = st.columns([2, 1])
needle = text_col.text_input("Filter (any text: title, artist, a characteristic…)", key="batch_filter")
min_score = score_col.slider("Minimum score", 0, 100, 0, key="batch_min_score")
shown = filter_table(result.table, needle, float(min_score))
st.caption(f"{len(shown):,} of {result.n_rows:,} rows" + (f" (the first {DISPLAY_ROWS:,} shown; filter to see "
           "others, the download has all)" if len(shown) > DISPLAY_ROWS else "") + " · click a column header to sort · "
           "up_/down_: the two characteristics pushing the score up most and holding it back most")
table = shown = shown.head(DISPLAY_ROWS)[display_order(result)]
if "filled" in shown and len(shown) <= STYLE_LIMIT:
    table = shown.style.apply(lambda row: [f"background-color: {FILLED_CELL}" if row["filled"] else "" for _ in row],
                              axis=1)
st.dataframe(table, key="batch_table", placeholder=EMPTY_CELL, column_config={  # rank and score pinned: on a phone
    RANK_COLUMN: st.column_config.NumberColumn(pinned=True),  # they stay in view while the rest scrolls
    "predicted_popularity": st.column_config.NumberColumn("score", format="%.1f", pinned=True),
    "low": st.column_config.NumberColumn(format="%.1f"), "high": st.column_config.NumberColumn(format="%.1f"),
    "percentile": st.column_config.NumberColumn(format="%.0f")})
st.caption(DRIVERS_NOTE)
chart(ranked_figure(result.table, result.labels, predictor), "batch_chart")
st.caption(model_error_words(predictor))

scored = [i for i in shown.index if i in result.attributions.index][:COMPARE_CHOICES]
if len(scored) < 2:  # the filter left fewer than two: offer the top of the ranking
    scored = list(result.attributions.index[:COMPARE_CHOICES])
if len(scored) >= 2:
    st.subheader("Compare two tracks")
    left, right = st.columns(2)
    first = left.selectbox("Track A", scored, index=0, format_func=lambda i: result.labels[i], key="batch_a")
    second = right.selectbox("Track B", scored, index=1, format_func=lambda i: result.labels[i], key="batch_b")
    summary, characteristics = compare_tracks(result, first, second)
    st.dataframe(summary, key="batch_compare_summary", placeholder=EMPTY_CELL)
    chart(compare_figure(characteristics), "batch_compare_chart")
    st.dataframe(characteristics, hide_index=True, key="batch_compare_table", placeholder=EMPTY_CELL)

stem = name.rsplit(".", 1)[0]
down_csv, down_html = st.columns(2)
down_csv.download_button("Download the ranked table (CSV)", lambda: to_csv_bytes(result), f"{stem}_scored.csv",
                         mime="text/csv", on_click="ignore", key="batch_download_csv", width="stretch")
down_html.download_button("Download a report to share (HTML)", lambda: html_report(result, predictor, title=stem),
                          f"{stem}_report.html", mime="text/html", on_click="ignore", key="batch_download_html",
                          width="stretch")
