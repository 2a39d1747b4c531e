"""Batch: score, rank and explain a whole table of tracks, filter it, compare two.

``score_batch`` builds on ``virality.batch.score.score_frame`` (same column mapping and row
validation as ``python -m virality score``) and adds a rank and, per track, the two
characteristics pushing its score up most and the two holding it back most (Integrated
Gradients from ``virality.explain.methods`` at its ``batch_steps``, 8 path steps instead of a
single-song explanation's 50: enough to rank drivers; ``benchmarks/score.py`` measures the
agreement with 50 steps and with the cheaper Rescale DeepLift, which agrees less often).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from virality.batch.score import score_frame
from virality.chunks import row_chunks
from virality.data.columns import ColumnMap, normalise_header
from virality.data.reading import Reading, read_csv_file
from virality.data.validation import DECIMAL_COMMA, point_notation, spreadsheet_rows
from virality.explain.methods import METHODS, IntegratedGradients, attribute_batch, top_drivers
from virality.features import BY_NAME, FEATURE_NAMES
from virality.model.prediction import FIT_COLUMN, Predictor

BATCH_METHOD = "ig"  # most faithful of the batch candidates: see DRIVER_METHODS and benchmarks/results/score.md
DRIVER_METHODS = tuple(key for key, method in METHODS.items() if method.ranks_drivers)
DRIVER_CHUNK = 5000  # rows per progress step
DRIVERS_NOTE = (
    f"How the drivers are found: Integrated Gradients against the typical TikTok track, with "
    f"{IntegratedGradients.batch_steps} points along the path per track instead of the Explain page's "
    f"{IntegratedGradients.n_steps} — enough to rank them (the same top two up and down as "
    f"{IntegratedGradients.n_steps} points for about 19 tracks in 20; DeepLift, twice as fast, agrees less "
    "often). Effects under 0.05 points are not listed. Measured in benchmarks/results/score.md.")
RANK_COLUMN = "rank"
DRIVER_COLUMNS = ["up_1", "up_2", "down_1", "down_2"]
UNUSUAL_COLUMN = "unusual"  # as on Predict: unlike the real tracks the model learned from
UNUSUAL_COMBINATION = "the combination of values"
POPULARITY_HEADERS = ("popularity", "track_popularity", "spotify_popularity", "real_popularity")
TITLE_HEADERS = ("title", "track_name", "track_title", "song", "song_title", "name", "track")
ARTIST_HEADERS = ("artist", "artists", "artist_name", "artist_names", "track_artist")
MIN_DRIVER_POINTS = 0.05
SCORE_COLUMN = "predicted_popularity"
RANK_CHOICES = {SCORE_COLUMN: "predicted popularity", FIT_COLUMN: "TikTok fit"}  # what a table can be ranked by
Progress = Callable[[float, str], None]


@dataclass
class BatchResult:
    """``table``: every input column (text, as read) plus ``predicted_popularity``, ``low``,
    ``high``, ``percentile``, ``tiktok_fit`` (as ``score`` writes them), ``rank`` (1 = highest
    score; ``rank_by`` ranks by TikTok fit instead), ``up_1``, ``up_2``, ``down_1``,
    ``down_2`` (characteristic names), ``unusual`` (empty, or what is unlike the real tracks
    the model learned from, as Predict warns), ``filled`` (with the fill option) and
    ``problem``; sorted by rank, unscored rows last; index = spreadsheet row (header = row 1
    unless ``reading.header_row`` says otherwise). ``attributions``: (scored rows, 12)
    Integrated Gradients in points, same index. ``values``: (n, 12) characteristics as
    scored. ``problems``: ``row, column, value, why``. ``reading``: how the file was read."""

    table: pd.DataFrame
    problems: pd.DataFrame
    attributions: pd.DataFrame
    values: pd.DataFrame
    columns: ColumnMap
    labels: pd.Series
    renamed_note: str = ""  # input columns named like a result column, kept under a new name
    reading: Reading | None = None

    @property
    def n_rows(self) -> int:
        return len(self.table)

    @property
    def n_scored(self) -> int:
        return int(self.table["predicted_popularity"].notna().sum())

    @property
    def n_unusual(self) -> int:
        return int((self.table[UNUSUAL_COLUMN] != "").sum())

    @property
    def decimal(self) -> str:
        return self.reading.decimal if self.reading is not None else "."


def score_batch(frame: pd.DataFrame, predictor: Predictor, fill: bool = False, drivers: bool = True,
                n_steps: int | None = None, progress: Progress | None = None) -> BatchResult:
    """Score, rank and explain ``frame`` (text cells as ``read_csv_file`` returns them).

    Raises ``virality.data.DataError`` for a table that cannot be scored at all (e.g. a
    characteristic column is absent and ``fill`` is off). ``progress(fraction, message)``
    is called as the work advances (scores first, then drivers chunk by chunk). ``n_steps``:
    IG path points per track (default: ``IntegratedGradients.batch_steps``).
    """
    report = progress or (lambda fraction, message: None)
    report(0.0, f"scoring {len(frame):,} rows")
    scored = score_frame(frame, predictor, fill=fill, reserved=(RANK_COLUMN, *DRIVER_COLUMNS, UNUSUAL_COLUMN))
    table = scored.table.set_axis(spreadsheet_rows(frame), axis=0).rename_axis("row")
    values = scored.values.set_axis(table.index, axis=0)
    good = scored.scored
    # the batch's own columns follow the score command's, which stay together in its order
    table.insert(table.columns.get_loc(FIT_COLUMN) + 1, RANK_COLUMN, ranks(table, SCORE_COLUMN))
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
    table.insert(position + len(DRIVER_COLUMNS), UNUSUAL_COLUMN, unusual_text(predictor, values, good))
    order = table.sort_values([RANK_COLUMN], kind="stable", na_position="last").index
    report(1.0, f"scored {int(good.sum()):,} of {len(frame):,} rows")
    return BatchResult(table=table.loc[order], problems=scored.problems, attributions=attributions.loc[
        order[order.isin(attributions.index)]], values=values.loc[order], columns=scored.columns,
        labels=track_labels(table.loc[order]), renamed_note=scored.renamed_note(), reading=scored.reading)


def ranks(table: pd.DataFrame, column: str) -> pd.Series:
    """1 for the highest ``column``, ties sharing the best rank; <NA> for unscored rows."""
    return table[column].rank(ascending=False, method="min").astype("Int64")


def rank_by(result: BatchResult, column: str = SCORE_COLUMN) -> BatchResult:
    """``result`` ranked by ``column`` (a key of ``RANK_CHOICES``): ``rank`` recomputed on it,
    rows in that order (ties keep their order, unscored rows last), attributions, values and
    labels alike. Every column keeps its name and place; only ``rank`` and the order change."""
    if column not in RANK_CHOICES:
        raise ValueError(f"cannot rank by {column!r}; choose one of {', '.join(RANK_CHOICES)}")
    table = result.table.assign(**{RANK_COLUMN: ranks(result.table, column)})
    order = table.sort_values([RANK_COLUMN], kind="stable", na_position="last").index
    return replace(result, table=table.loc[order], values=result.values.loc[order], labels=result.labels.loc[order],
                   attributions=result.attributions.loc[order[order.isin(result.attributions.index)]])


def unusual_text(predictor: Predictor, values: pd.DataFrame, good: np.ndarray) -> pd.Series:
    """Per row, Predict's out-of-distribution verdict in words: ``""`` for a track like the
    real ones, else the characteristics outside 99 % of real tracks (``"loudness"``) or
    ``UNUSUAL_COMBINATION`` when each value is usual but together they are not; ``""`` for
    unscored rows. ``values``: (n, 12) as scored; ``good``: (n,) bool, the scored rows."""
    text = pd.Series("", index=values.index, dtype=object)
    if good.any():
        X = values.to_numpy(np.float64)[good]
        flagged = predictor.is_out_of_distribution(X)
        if flagged.any():
            _, outside = predictor.ood_check(X[flagged])
            text.iloc[np.flatnonzero(good)[flagged]] = [", ".join(names) or UNUSUAL_COMBINATION for names in outside]
    return text


def score_upload(data: bytes, name: str, predictor: Predictor, fill: bool = False,
                 progress: Progress | None = None) -> BatchResult:
    """An uploaded file's bytes (CSV or ``.xlsx``) → ``BatchResult``; ``DataError`` with one
    plain line when the file cannot be used."""
    return score_batch(read_csv_file(data, name), predictor, fill=fill, progress=progress)


def batch_attributions(predictor: Predictor, values: pd.DataFrame, n_steps: int | None = None,
                       progress: Progress | None = None, method: str = BATCH_METHOD) -> pd.DataFrame:
    """(n, 12) characteristics → (n, 12) attributions in points against the typical track
    (same index), ``DRIVER_CHUNK`` rows per progress step."""
    X = values[list(FEATURE_NAMES)].to_numpy(np.float64)
    parts = []
    for rows in row_chunks(len(X), DRIVER_CHUNK):
        if progress is not None:
            progress(0.05 + 0.95 * rows.start / len(X), f"explaining tracks {rows.start + 1:,}–{rows.stop:,} "
                     f"of {len(X):,}")
        parts.append(driver_attributions(predictor, X[rows], method, n_steps)[0])
    return pd.DataFrame(np.concatenate(parts) if parts else np.empty((0, len(FEATURE_NAMES))),
                        index=values.index, columns=list(FEATURE_NAMES))


def driver_attributions(predictor: Predictor, X: np.ndarray, method: str = BATCH_METHOD,
                        n_steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(n, 12) characteristics → attributions (n, 12) in points and completeness delta (n,)
    (Σ attributions − (f(x) − f(typical))), by ``method`` of ``DRIVER_METHODS`` at its batch
    settings, in passes of about ``virality.explain.methods.PATH_POINTS_PER_PASS`` model evaluations."""
    if len(X) == 0:
        return np.empty((0, len(FEATURE_NAMES))), np.empty(0)
    if method not in DRIVER_METHODS:
        raise ValueError(f"unknown driver method {method!r}; choose one of {', '.join(DRIVER_METHODS)}")
    return attribute_batch(predictor, X, method=method, n_steps=n_steps)


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
    """Columns for reading on screen: rank, title/artist, the verdict (score, TikTok fit when
    the bundle has it) and drivers first, then the remaining input columns (the download keeps
    the input order)."""
    table = result.table
    names = [find_column(table.columns, TITLE_HEADERS), find_column(table.columns, ARTIST_HEADERS)]
    given = find_column(table.columns, POPULARITY_HEADERS)
    has_fit = table[FIT_COLUMN].notna().any()  # no column of blanks without a fit model
    first = [RANK_COLUMN, *[n for n in names if n is not None], "predicted_popularity",
             *([given] if given is not None else []), *([FIT_COLUMN] if has_fit else []), "low", "high",
             "percentile", UNUSUAL_COLUMN, *DRIVER_COLUMNS, *[c for c in ("filled", "problem") if c in table.columns]]
    return first + [c for c in table.columns if c not in first and (has_fit or c != FIT_COLUMN)]


@dataclass(frozen=True)
class PopularityCheck:
    """The file's own popularity against the prediction: ``column`` (its header), ``n_tracks``
    (scored rows with a number there) and ``spearman`` (rank correlation, −1…1; NaN when
    under 3 tracks or one side is constant)."""

    column: str
    n_tracks: int
    spearman: float


def popularity_check(result: BatchResult) -> PopularityCheck | None:
    """``PopularityCheck`` when the file has a popularity column (``POPULARITY_HEADERS``), else None."""
    column = find_column(result.table.columns, POPULARITY_HEADERS)
    if column is None:
        return None
    cells = result.table[column]
    given = pd.to_numeric(point_notation(cells) if result.decimal == DECIMAL_COMMA else cells, errors="coerce")
    predicted = result.table["predicted_popularity"]
    both = given.notna() & predicted.notna() & np.isfinite(given.astype(float))
    rho = spearman(given[both].to_numpy(float), predicted[both].to_numpy(float))
    return PopularityCheck(column=str(column), n_tracks=int(both.sum()), spearman=rho)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two (n,) arrays (ties share their mean rank); NaN when
    n < 3 or either is constant. Pearson's correlation of the ranks, without SciPy."""
    if len(a) < 3:
        return float("nan")
    ranks = [pd.Series(x).rank(method="average").to_numpy() for x in (a, b)]
    if min(r.std() for r in ranks) == 0:
        return float("nan")
    return float(np.corrcoef(ranks[0], ranks[1])[0, 1])


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
