"""Batch: upload a CSV (or pick the demo tracks); every track scored, ranked, explained."""

import hashlib

import numpy as np
import streamlit as st

from ui.layout import chart, page_header
from ui.sessions import collect_soon
from ui.state import get_predictor, keep, kept_index
from virality.batch.export import EMPTY_CELL, html_report, model_error_words, to_csv_bytes
from virality.batch.plots import compare_figure, ranked_figure
from virality.batch.ranking import (
    DRIVERS_NOTE,
    RANK_CHOICES,
    RANK_COLUMN,
    SCORE_COLUMN,
    UNUSUAL_COLUMN,
    BatchResult,
    compare_tracks,
    display_order,
    filter_table,
    popularity_check,
    rank_by,
    score_upload,
)
from virality.data.demo import DEMO_CSV
from virality.data.reading import DataError
from virality.markdown import escape_markdown
from virality.model.prediction import FIT_COLUMN
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
    bar = st.progress(0.0, text=f"Reading {escape_markdown(name)}…")
    try:
        outcome = score_upload(data, name, predictor, fill=fill, progress=lambda f, text: bar.progress(f, text=text))
    except DataError as err:
        outcome = str(err)
    bar.empty()
    st.session_state["batch_job"], st.session_state["batch_outcome"] = job, outcome
    collect_soon()  # the previous job's tables, held by earlier runs' namespaces
outcome = st.session_state["batch_outcome"]
if isinstance(outcome, str):
    st.error(f"This file cannot be scored: {escape_markdown(outcome)}")
    st.stop()
result: BatchResult = outcome
file_key = job[1][:16]  # widgets that list this file's tracks start afresh with each file

(st.success if result.n_scored else st.warning)(f"**{escape_markdown(name)}**: scored {result.n_scored:,} of "
                                               f"{result.n_rows:,} tracks.")
for note in result.reading.notes() if result.reading else []:
    st.info(note[0].upper() + note[1:] + ".")  # our own words: row numbers, no user text
if result.renamed_note:
    st.info(escape_markdown(result.renamed_note[0].upper() + result.renamed_note[1:] + "."))
if result.columns.choices:
    st.warning(f"More than one column means {', '.join(result.columns.choices)}: the one read and the ones kept as "
               "they are (not read) are named under “How your columns were read”.")
with st.expander("How your columns were read", expanded=bool(result.columns.missing or result.columns.choices)):
    st.dataframe(result.columns.report(), hide_index=True, key="batch_mapping", placeholder=EMPTY_CELL)
    if result.columns.extra:
        st.caption("Kept as they are: " + ", ".join(map(escape_markdown, result.columns.extra)))
    if result.columns.missing:
        st.warning("Not found, filled with the typical track's value: " + ", ".join(result.columns.missing))
    if result.reading is not None and result.reading.kind == "csv":
        st.caption(f"Read as {result.reading.encoding_name} text"
                   + ("; separated by semicolons or tabs, so numbers with a decimal comma (0,68) are read as numbers "
                      "and kept as written in the download" if result.decimal == "," else "") + ".")
if len(result.problems):
    st.warning(f"{result.n_rows - result.n_scored:,} row(s) not scored: nothing was changed, fix these cells "
               "and upload again (row numbers as in a spreadsheet, header = row 1).")
    st.dataframe(result.problems, hide_index=True, key="batch_problems", placeholder=EMPTY_CELL)
if "filled" in result.table and (result.table["filled"] != "").any():
    n_filled = int((result.table["filled"] != "").sum())
    st.info(f"{n_filled:,} track(s) had missing values filled with the typical track's value: see the "
            "**filled** column (their scores lean on a guess).")
if result.n_unusual:
    st.warning(f"⚠ {result.n_unusual:,} track(s) are unlike the real tracks the model learned from: treat their scores "
               "as guesses. The **unusual** column names what is unusual (as the Predict page warns).")
agreement = popularity_check(result)
if agreement is not None:
    rho = "not defined (fewer than 3 tracks, or one side constant)" if np.isnan(agreement.spearman) else \
        f"{agreement.spearman:.2f}"
    st.info(f"Your file has its own popularity column, shown beside the prediction. Rank correlation (Spearman) "
            f"between the two over {agreement.n_tracks:,} scored track(s): **{rho}** (1: the same order, 0: unrelated).")

st.subheader("Ranked tracks")
choices = list(RANK_CHOICES) if predictor.fit is not None else [SCORE_COLUMN]
ranking = SCORE_COLUMN
if len(choices) > 1:
    ranking = st.radio("Rank by", choices, key="batch_rank_by", horizontal=True, format_func=RANK_CHOICES.get,
                       index=kept_index("batch_rank_by", choices), on_change=keep, args=("batch_rank_by",))
    if ranking == FIT_COLUMN:  # score_batch ranked by popularity already
        st.caption("Ranked by TikTok fit: the **rank** column, the chart and the downloads' row order follow this "
                   "choice. The columns stay the same: those `python -m virality score` writes, in its order, "
                   "then rank, drivers and unusual.")
        result = rank_by(result, ranking)
text_col, score_col = st.columns([2, 1])
needle = text_col.text_input("Filter (any text: title, artist, a characteristic…)", key="batch_filter")
min_score = score_col.slider("Minimum score", 0, 100, 0, key="batch_min_score")
shown = filter_table(result.table, needle, float(min_score))
st.caption(f"{len(shown):,} of {result.n_rows:,} rows" + (f" (the first {DISPLAY_ROWS:,} shown; filter to see "
           "others, the download has all)" if len(shown) > DISPLAY_ROWS else "") + " · click a column header to sort · "
           "up_/down_: the two characteristics pushing the score up most and holding it back most")
filtered = shown
table = shown = shown.head(DISPLAY_ROWS)[display_order(result)]
if shown[UNUSUAL_COLUMN].ne("").any():  # the marker on screen; the download keeps the plain words
    table = shown = shown.assign(**{UNUSUAL_COLUMN: np.where(shown[UNUSUAL_COLUMN] != "",
                                                             "⚠ " + shown[UNUSUAL_COLUMN].astype(str), "")})
if "filled" in shown and len(shown) <= STYLE_LIMIT:
    table = shown.style.apply(lambda row: [f"background-color: {FILLED_CELL}" if row["filled"] else "" for _ in row],
                              axis=1)
st.dataframe(table, key="batch_table", placeholder=EMPTY_CELL, column_config={  # rank and score pinned: on a phone
    RANK_COLUMN: st.column_config.NumberColumn(pinned=True),  # they stay in view while the rest scrolls
    "predicted_popularity": st.column_config.NumberColumn("score", format="%.1f", pinned=True),
    "low": st.column_config.NumberColumn(format="%.1f"), "high": st.column_config.NumberColumn(format="%.1f"),
    "percentile": st.column_config.NumberColumn(format="%.0f"),
    FIT_COLUMN: st.column_config.NumberColumn("TikTok fit %", format="%.0f")})
st.caption(DRIVERS_NOTE)
chart(ranked_figure(result.table, result.labels, predictor, by=ranking), "batch_chart")
st.caption(model_error_words(predictor))

scored = [i for i in shown.index if i in result.attributions.index][:COMPARE_CHOICES]
if len(scored) < 2:  # the filter left fewer than two: offer the top of the ranking
    scored = list(result.attributions.index[:COMPARE_CHOICES])
if len(scored) >= 2:
    st.subheader("Compare two tracks")
    left, right = st.columns(2)
    first = left.selectbox("Track A", scored, index=0, format_func=lambda i: result.labels[i], key=f"batch_a_{file_key}")
    second = right.selectbox("Track B", scored, index=1, format_func=lambda i: result.labels[i],
                             key=f"batch_b_{file_key}")
    summary, characteristics = compare_tracks(result, first, second)
    st.dataframe(summary, key="batch_compare_summary", placeholder=EMPTY_CELL)
    chart(compare_figure(characteristics), "batch_compare_chart")
    st.dataframe(characteristics, hide_index=True, key="batch_compare_table", placeholder=EMPTY_CELL)

stem = name.rsplit(".", 1)[0]
is_filtered = len(filtered) < result.n_rows
if is_filtered:
    st.caption(f"The filter shows {len(filtered):,} of {result.n_rows:,} rows: “filtered rows” downloads just those; "
               "the full table and the report hold every row.")
buttons = st.columns(3 if is_filtered else 2)
if is_filtered:
    buttons[-1].download_button(f"Download the {len(filtered):,} filtered row{'' if len(filtered) == 1 else 's'} (CSV)",
                                lambda: to_csv_bytes(result, filtered.index), f"{stem}_scored_filtered.csv",
                                mime="text/csv", on_click="ignore", key="batch_download_filtered", width="stretch")
buttons[0].download_button(f"Download the ranked table{f': all {result.n_rows:,} rows' if is_filtered else ''} (CSV)",
                           lambda: to_csv_bytes(result), f"{stem}_scored.csv", mime="text/csv", on_click="ignore",
                           key="batch_download_csv", width="stretch")
buttons[1].download_button("Download a report to share (HTML, every row)", lambda: html_report(result, predictor,
                           title=stem), f"{stem}_report.html", mime="text/html", on_click="ignore",
                           key="batch_download_html", width="stretch")
