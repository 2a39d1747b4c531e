"""What a batch result becomes outside the app: a CSV a spreadsheet opens safely and a
self-contained HTML report.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from virality.batch.ranking import RANK_COLUMN, UNUSUAL_COLUMN, BatchResult
from virality.batch.score import neutralise_formulas
from virality.features import BY_NAME
from virality.model.prediction import FIT_COLUMN, Predictor
from virality.plotting import BLUE, LIGHT, PANEL, TEXT

REPORT_ROWS = 500
EMPTY_CELL = "—"  # how the report shows a cell the file left empty (never "NaN")


def export_table(result: BatchResult, rows: pd.Index | None = None) -> pd.DataFrame:
    """The table users download: the ranked table (only ``rows``, spreadsheet row numbers, when
    given: the filtered view) with formula cells neutralised; numbers in the file's own notation
    (``-7,8`` in a semicolon-separated file) are kept exactly as written."""
    table = result.table if rows is None else result.table.loc[result.table.index.intersection(rows, sort=False)]
    return neutralise_formulas(table.reset_index(drop=True), result.decimal)


def to_csv_bytes(result: BatchResult, rows: pd.Index | None = None) -> bytes:
    """The download CSV (every row, or only ``rows``), UTF-8 with BOM so spreadsheets read accents right."""
    return export_table(result, rows).to_csv(index=False).encode("utf-8-sig")


def model_error_words(predictor: Predictor) -> str:
    """The model's held-out error in plain words (from the bundle's metadata)."""
    info = predictor.info
    return (f"On real tracks it never saw during training (each of {info.data.tracks:,} scored by a model "
            f"trained without it), the model's score was "
            f"typically {predictor.typical_error:.0f} points away from the real popularity "
            f"(R² {info.metrics.model.r2:.2f}). "
            f"Each interval is where about {predictor.interval_level:.0%} of tracks like this one really land "
            f"(± {predictor.half_width:.0f} points). Audio characteristics explain only a small part of "
            f"popularity: use the ranking to compare tracks, not as a promise.")


def report_table(result: BatchResult, limit: int = REPORT_ROWS) -> pd.DataFrame:
    """The ranked rows shown in the report: label, score, TikTok fit (with a fit model),
    interval, percentile, drivers, and what is unlike the real tracks the model learned from (empty for usual tracks)."""
    scored = result.table[result.table["predicted_popularity"].notna()].head(limit)
    labels = result.labels.loc[scored.index]

    def readable(column: str) -> pd.Series:
        return scored[column].map(lambda n: BY_NAME[n].label if n in BY_NAME else "")

    fit = {"TikTok fit %": scored[FIT_COLUMN].round(0).astype(int)} if scored[FIT_COLUMN].notna().any() else {}
    return pd.DataFrame({
        "rank": scored[RANK_COLUMN].astype(int), "track": labels,
        "predicted popularity": scored["predicted_popularity"].round(1), **fit,
        "interval": scored["low"].round(0).astype(int).astype(str) + " – "
        + scored["high"].round(0).astype(int).astype(str),
        "percentile": scored["percentile"].round(0).astype(int),
        "pushing up": readable("up_1") + np.where(scored["up_2"] != "", ", ", "") + readable("up_2"),
        "holding back": readable("down_1") + np.where(scored["down_2"] != "", ", ", "") + readable("down_2"),
        "unusual (a guess)": scored[UNUSUAL_COLUMN],
    })


def html_report(result: BatchResult, predictor: Predictor, title: str = "Track ranking",
                limit: int = REPORT_ROWS) -> str:
    """A self-contained HTML page (plotly's JavaScript inline, no network) with the ranked
    table, the ranked chart with intervals, the drivers and the model's error in words."""
    from virality.batch.plots import ranked_figure

    figure = ranked_figure(result.table, result.labels, predictor, limit=min(limit, 40))
    chart = figure.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False})
    table = report_table(result, limit)
    shown = f"the top {len(table):,} of" if len(table) < result.n_scored else "all"
    problems = ""
    if len(result.problems):
        listed = result.problems.head(200).to_html(index=False, escape=True, classes="table", na_rep=EMPTY_CELL)
        problems = (f"<h2>Rows not scored</h2><p>{result.n_rows - result.n_scored:,} row(s) could not be scored "
                    f"(row numbers as in a spreadsheet, header = row 1).</p>{listed}")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, -apple-system, sans-serif; margin: 2rem auto; max-width: 1100px; color: {TEXT}; }}
.table {{ border-collapse: collapse; width: 100%; font-size: 0.9rem; }}
.table th, .table td {{ border-bottom: 1px solid {LIGHT}; padding: 4px 8px; text-align: left; }}
.note {{ background: {PANEL}; border-left: 4px solid {BLUE}; padding: 0.6rem 1rem; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{result.n_scored:,} of {result.n_rows:,} tracks scored on {stamp} by <em>virality</em>, which predicts TikTok
popularity (0–100) from 12 Spotify audio characteristics.</p>
<p class="note">{html.escape(model_error_words(predictor))}</p>
<h2>Ranking</h2>{chart}
<h2>Tracks ({shown} {result.n_scored:,} scored)</h2>
<p>“Pushing up” and “holding back”: the two characteristics that raise or lower this track's score most
compared with a typical TikTok track.</p>
{table.to_html(index=False, escape=True, classes="table")}
{problems}
</body></html>
"""
