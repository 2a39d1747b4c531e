"""Batch: score, rank and explain a whole table of tracks; compare two; export safely.

``score_batch`` builds on ``virality.score.score_frame`` (same column mapping and row
validation as ``python -m virality score``) and adds a rank and, per track, the two
characteristics pushing its score up most and the two holding it back most (Integrated
Gradients from ``virality.explain``, 8 path steps instead of a single-song explanation's 50:
enough to rank drivers; ``benchmarks/score.py`` measures the agreement with 50 steps and
with the cheaper Rescale DeepLift, which agrees less often).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from virality.columns import ColumnMap, normalise_header
from virality.data import read_csv_file
from virality.explain import attribute, fast_integrated_gradients, top_drivers
from virality.features import BY_NAME, FEATURE_NAMES
from virality.predict import Predictor
from virality.score import score_frame

BATCH_METHOD = "ig"  # most faithful of the batch candidates: see DRIVER_METHODS and benchmarks/results/score.md
BATCH_IG_STEPS = 8
DRIVER_CHUNK = 5000  # rows per progress step
DRIVERS_NOTE = (
    "How the drivers are found: Integrated Gradients against the typical TikTok track, with 8 points along the "
    "path per track instead of the Explain page's 50 — enough to rank them (the same top two up and down as 50 "
    "points for about 19 tracks in 20; DeepLift, twice as fast, agrees less often). Effects under "
    "0.05 points are not listed. Measured in benchmarks/results/score.md.")
DRIVER_METHODS = {"ig": "Integrated Gradients (Gauss–Legendre path in the model's transformed inputs)",
                  "deeplift": "DeepLift, Rescale rule (one forward and backward pass, exact completeness)"}
RANK_COLUMN = "rank"
DRIVER_COLUMNS = ["up_1", "up_2", "down_1", "down_2"]
TITLE_HEADERS = ("title", "track_name", "track_title", "song", "song_title", "name", "track")
ARTIST_HEADERS = ("artist", "artists", "artist_name", "artist_names", "track_artist")
FORMULA_START = re.compile(r"^[=+\-@\t\r]")
REPORT_ROWS = 500
MIN_DRIVER_POINTS = 0.05

Progress = Callable[[float, str], None]


@dataclass
class BatchResult:
    """``table``: every input column (text, as read) plus ``predicted_popularity``, ``low``,
    ``high``, ``percentile``, ``rank`` (1 = highest score), ``up_1``, ``up_2``, ``down_1``,
    ``down_2`` (characteristic names), ``filled`` (with the fill option) and ``problem``;
    sorted by rank, unscored rows last; index = spreadsheet row (header = row 1).
    ``attributions``: (scored rows, 12) Integrated Gradients in points, same index.
    ``values``: (n, 12) characteristics as scored. ``problems``: ``row, column, value, why``."""

    table: pd.DataFrame
    problems: pd.DataFrame
    attributions: pd.DataFrame
    values: pd.DataFrame
    columns: ColumnMap
    labels: pd.Series
    renamed_note: str = ""  # input columns named like a result column, kept under a new name

    @property
    def n_rows(self) -> int:
        return len(self.table)

    @property
    def n_scored(self) -> int:
        return int(self.table["predicted_popularity"].notna().sum())


def score_batch(frame: pd.DataFrame, predictor: Predictor, fill: bool = False, drivers: bool = True,
                n_steps: int = BATCH_IG_STEPS, progress: Progress | None = None) -> BatchResult:
    """Score, rank and explain ``frame`` (text cells as ``read_csv_file`` returns them).

    Raises ``virality.data.DataError`` for a table that cannot be scored at all (e.g. a
    characteristic column is absent and ``fill`` is off). ``progress(fraction, message)``
    is called as the work advances (scores first, then drivers chunk by chunk).
    """
    report = progress or (lambda fraction, message: None)
    report(0.0, f"scoring {len(frame):,} rows")
    scored = score_frame(frame, predictor, fill=fill, reserved=(RANK_COLUMN, *DRIVER_COLUMNS))
    table = scored.table.set_axis(np.arange(len(frame)) + 2, axis=0).rename_axis("row")
    values = scored.values.set_axis(table.index, axis=0)
    good = scored.scored
    rank = table["predicted_popularity"].rank(ascending=False, method="min")
    table.insert(table.columns.get_loc("percentile") + 1, RANK_COLUMN, rank.astype("Int64"))
    attributions = pd.DataFrame(np.nan, index=table.index[good], columns=list(FEATURE_NAMES))
    if drivers and good.any():
        attributions = batch_attributions(predictor, values[good], n_steps, report)
    # effects under MIN_DRIVER_POINTS are path-integration noise, not drivers
    meaningful = attributions.fillna(0.0).where(attributions.abs() >= MIN_DRIVER_POINTS, 0.0)
    top = top_drivers(meaningful) if drivers else pd.DataFrame(columns=DRIVER_COLUMNS)
    top = top.reindex(table.index).fillna("")
    position = table.columns.get_loc(RANK_COLUMN) + 1
    for offset, column in enumerate(DRIVER_COLUMNS):
        table.insert(position + offset, column, top[column].astype(object))
    order = table.sort_values([RANK_COLUMN], kind="stable", na_position="last").index
    report(1.0, f"scored {int(good.sum()):,} of {len(frame):,} rows")
    return BatchResult(table=table.loc[order], problems=scored.problems, attributions=attributions.loc[
        order[order.isin(attributions.index)]], values=values.loc[order], columns=scored.columns,
        labels=track_labels(table.loc[order]), renamed_note=scored.renamed_note())


def score_upload(data: bytes, name: str, predictor: Predictor, fill: bool = False,
                 progress: Progress | None = None) -> BatchResult:
    """An uploaded file's bytes (CSV or ``.xlsx``) → ``BatchResult``; ``DataError`` with one
    plain line when the file cannot be used."""
    return score_batch(read_csv_file(data, name), predictor, fill=fill, progress=progress)


def batch_attributions(predictor: Predictor, values: pd.DataFrame, n_steps: int = BATCH_IG_STEPS,
                       progress: Progress | None = None, method: str = BATCH_METHOD) -> pd.DataFrame:
    """(n, 12) characteristics → (n, 12) attributions in points against the typical track
    (same index), ``DRIVER_CHUNK`` rows per progress step."""
    X = values[list(FEATURE_NAMES)].to_numpy(np.float64)
    parts = []
    for start in range(0, len(X), DRIVER_CHUNK):
        if progress is not None:
            progress(0.05 + 0.95 * start / len(X), f"explaining tracks {start + 1:,}–"
                     f"{min(start + DRIVER_CHUNK, len(X)):,} of {len(X):,}")
        parts.append(driver_attributions(predictor, X[start:start + DRIVER_CHUNK], method, n_steps)[0])
    return pd.DataFrame(np.concatenate(parts) if parts else np.empty((0, len(FEATURE_NAMES))),
                        index=values.index, columns=list(FEATURE_NAMES))


def driver_attributions(predictor: Predictor, X: np.ndarray, method: str = BATCH_METHOD,
                        n_steps: int = BATCH_IG_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """(n, 12) characteristics → attributions (n, 12) in points and completeness delta (n,)
    (Σ attributions − (f(x) − f(typical))), by ``method`` of ``DRIVER_METHODS``, in passes
    of about ``virality.explain.PATH_POINTS_PER_PASS`` model evaluations."""
    if len(X) == 0:
        return np.empty((0, len(FEATURE_NAMES))), np.empty(0)
    if method == "ig":
        return fast_integrated_gradients(predictor, X, n_steps=n_steps)
    if method not in DRIVER_METHODS:
        raise ValueError(f"unknown driver method {method!r}; choose one of {', '.join(DRIVER_METHODS)}")
    return attribute(predictor, X, method=method)


def find_column(columns: pd.Index, candidates: tuple[str, ...]) -> str | None:
    """The first input column whose normalised header is one of ``candidates``."""
    by_normal = {}
    for column in columns:
        by_normal.setdefault(normalise_header(column), column)
    return next((by_normal[c] for c in candidates if c in by_normal), None)


def track_labels(table: pd.DataFrame) -> pd.Series:
    """Per row a readable name: ``"Summer Hook — Nova Example"``, else ``"row 7"``."""
    title = find_column(table.columns, TITLE_HEADERS)
    artist = find_column(table.columns, ARTIST_HEADERS)
    rows = pd.Series([f"row {r}" for r in table.index], index=table.index, dtype=object)
    if title is None:
        return rows
    label = table[title].astype(object).where(table[title].notna(), rows)
    if artist is not None:
        label = label.where(table[artist].isna(), label.astype(str) + " — " + table[artist].astype(str))
    duplicated = label.duplicated(keep=False)
    return label.where(~duplicated, label.astype(str) + " (" + rows + ")").astype(str)


def display_order(result: BatchResult) -> list[str]:
    """Columns for reading on screen: rank, title/artist, the verdict and drivers first,
    then the remaining input columns (the download keeps the input order)."""
    table = result.table
    names = [find_column(table.columns, TITLE_HEADERS), find_column(table.columns, ARTIST_HEADERS)]
    first = [RANK_COLUMN, *[n for n in names if n is not None], "predicted_popularity", "low", "high", "percentile",
             *DRIVER_COLUMNS, *[c for c in ("filled", "problem") if c in table.columns]]
    return first + [c for c in table.columns if c not in first]


def filter_table(table: pd.DataFrame, text: str = "", min_score: float = 0.0,
                 scored_only: bool = False) -> pd.DataFrame:
    """Rows whose text cells contain ``text`` (any case) and whose score is at least
    ``min_score`` (unscored rows are kept unless ``scored_only`` or ``min_score`` > 0)."""
    keep = pd.Series(True, index=table.index)
    if text.strip():
        needle = text.strip().lower()
        found = pd.Series(False, index=table.index)
        for column in table.columns:
            if table[column].dtype == object or pd.api.types.is_string_dtype(table[column]):
                found |= table[column].astype(str).str.lower().str.contains(needle, regex=False, na=False)
        keep &= found
    score = table["predicted_popularity"]
    if scored_only or min_score > 0:
        keep &= score.notna() & (score >= min_score)
    return table[keep]


def compare_tracks(result: BatchResult, first: int, second: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two scored rows (by spreadsheet row number) side by side.

    Returns ``(summary, characteristics)``: ``summary`` has rows score, interval,
    percentile, rank and one column per track; ``characteristics`` has one row per
    characteristic with each track's value (user units) and attribution (points).
    """
    names = [result.labels[first], result.labels[second]]
    if names[0] == names[1]:
        names = [f"{names[0]} (A)", f"{names[1]} (B)"]
    summary = pd.DataFrame({name: [f"{row['predicted_popularity']:.1f}", f"{row['low']:.0f} – {row['high']:.0f}",
                                   f"{row['percentile']:.0f}", f"{row[RANK_COLUMN]}"]
                            for name, row in zip(names, (result.table.loc[first], result.table.loc[second]))},
                           index=["predicted popularity", "interval", "percentile", "rank"])
    characteristics = pd.DataFrame({"characteristic": [BY_NAME[n].label for n in FEATURE_NAMES]})
    for name, row in zip(names, (first, second)):
        characteristics[f"{name}: value"] = [BY_NAME[n].format(result.values.loc[row, n]) for n in FEATURE_NAMES]
        effect = (result.attributions.loc[row] if row in result.attributions.index
                  else pd.Series(np.nan, index=list(FEATURE_NAMES)))
        characteristics[f"{name}: effect (points)"] = effect.to_numpy().round(2)
    return summary, characteristics


def neutralise_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """A copy where every text cell that a spreadsheet would run as a formula (starts with
    ``=``, ``+``, ``-``, ``@``, tab or carriage return) gets a leading ``'`` (OWASP CSV
    injection advice). Cells that read as plain numbers (``-6.2``) and number columns are
    left as they are."""
    safe = table.copy()
    safe.columns = [_neutral_header(c) for c in safe.columns]
    for column in safe.columns:
        cells = safe[column]
        if not (cells.dtype == object or pd.api.types.is_string_dtype(cells)):
            continue
        text = cells.astype(object)
        is_text = text.map(type) == str  # noqa: E721 — exact type test, vectorised per column
        risky = is_text & text.where(is_text, "").astype(str).str.match(FORMULA_START)
        if not risky.any():
            continue
        looks_numeric = pd.to_numeric(text[risky], errors="coerce").notna().reindex(text.index, fill_value=False)
        fix = risky & ~looks_numeric
        safe[column] = text.where(~fix, "'" + text.where(fix, "").astype(str))
    return safe


def _neutral_header(header) -> object:
    """Header cells are text cells too."""
    text = str(header)
    if FORMULA_START.match(text) and pd.isna(pd.to_numeric(text, errors="coerce")):
        return "'" + text
    return header


def export_table(result: BatchResult) -> pd.DataFrame:
    """The table users download: the ranked table with formula cells neutralised."""
    return neutralise_formulas(result.table.reset_index(drop=True))


def to_csv_bytes(result: BatchResult) -> bytes:
    """The download CSV, UTF-8 with BOM so spreadsheets read accents right."""
    return export_table(result).to_csv(index=False).encode("utf-8-sig")


def model_error_words(predictor: Predictor) -> str:
    """The model's held-out error in plain words (from the bundle's metadata)."""
    meta = predictor.metadata
    metrics = meta["metrics"]["model"]
    return (f"On {meta['data']['test_tracks']:,} real tracks it never saw during training, the model's score was "
            f"typically {predictor.typical_error:.0f} points away from the real popularity (R² {metrics['r2']:.2f}). "
            f"Each interval is where about {predictor.interval_level:.0%} of tracks like this one really land "
            f"(± {predictor.half_width:.0f} points). Audio characteristics explain only a small part of "
            f"popularity: use the ranking to compare tracks, not as a promise.")


def report_table(result: BatchResult, limit: int = REPORT_ROWS) -> pd.DataFrame:
    """The ranked rows shown in the report: label, score, interval, percentile, drivers."""
    scored = result.table[result.table["predicted_popularity"].notna()].head(limit)
    labels = result.labels.loc[scored.index]

    def readable(column: str) -> pd.Series:
        return scored[column].map(lambda n: BY_NAME[n].label if n in BY_NAME else "")

    return pd.DataFrame({
        "rank": scored[RANK_COLUMN].astype(int), "track": labels,
        "predicted popularity": scored["predicted_popularity"].round(1),
        "interval": scored["low"].round(0).astype(int).astype(str) + " – "
        + scored["high"].round(0).astype(int).astype(str),
        "percentile": scored["percentile"].round(0).astype(int),
        "pushing up": readable("up_1") + np.where(scored["up_2"] != "", ", ", "") + readable("up_2"),
        "holding back": readable("down_1") + np.where(scored["down_2"] != "", ", ", "") + readable("down_2"),
    })


def html_report(result: BatchResult, predictor: Predictor, title: str = "Track ranking",
                limit: int = REPORT_ROWS) -> str:
    """A self-contained HTML page (plotly's JavaScript inline, no network) with the ranked
    table, the ranked chart with intervals, the drivers and the model's error in words."""
    from virality.batch_plots import ranked_figure

    figure = ranked_figure(result.table, result.labels, predictor, limit=min(limit, 40))
    chart = figure.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False})
    table = report_table(result, limit)
    shown = f"the top {len(table):,} of" if len(table) < result.n_scored else "all"
    problems = ""
    if len(result.problems):
        listed = result.problems.head(200).to_html(index=False, escape=True, classes="table")
        problems = (f"<h2>Rows not scored</h2><p>{result.n_rows - result.n_scored:,} row(s) could not be scored "
                    f"(row numbers as in a spreadsheet, header = row 1).</p>{listed}")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, -apple-system, sans-serif; margin: 2rem auto; max-width: 1100px; color: #1f2328; }}
.table {{ border-collapse: collapse; width: 100%; font-size: 0.9rem; }}
.table th, .table td {{ border-bottom: 1px solid #d0d7de; padding: 4px 8px; text-align: left; }}
.note {{ background: #f6f8fa; border-left: 4px solid #1f6feb; padding: 0.6rem 1rem; }}
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
