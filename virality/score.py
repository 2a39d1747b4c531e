"""Scoring a CSV of tracks: every row kept, bad rows explained, good rows scored."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from virality.data import DataError, check_rows, read_csv_file
from virality.features import FEATURE_NAMES, shown
from virality.predict import PREDICTION_COLUMNS, Predictor

PROBLEM_COLUMN = "problem"
COLUMN_ALIASES = {"duration_ms": "duration"}


@dataclass
class ScoreResult:
    """``table``: every input row and column plus the prediction columns and ``problem``.
    ``problems``: one row per bad cell (``row``, ``column``, ``value``, ``why``)."""

    table: pd.DataFrame
    problems: pd.DataFrame

    @property
    def n_scored(self) -> int:
        return int(self.table["predicted_popularity"].notna().sum())


def characteristic_columns(frame: pd.DataFrame) -> dict[str, str]:
    """Map each characteristic to the input column that holds it (``duration_ms`` too)."""
    mapping = {name: name for name in FEATURE_NAMES if name in frame.columns}
    for alias, name in COLUMN_ALIASES.items():
        if name not in mapping and alias in frame.columns:
            mapping[name] = alias
    return mapping


def score_frame(frame: pd.DataFrame, predictor: Predictor) -> ScoreResult:
    """Score a table of text cells. Raises ``DataError`` if a characteristic column is absent."""
    repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if repeated:
        raise DataError(f"column name(s) {', '.join(map(shown, repeated[:5]))} appear more than once: "
                        "rename or remove the extra ones")
    mapping = characteristic_columns(frame)
    missing = [n for n in FEATURE_NAMES if n not in mapping]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)}")
    renamed = frame[list(mapping.values())].set_axis(list(mapping), axis=1)
    values, problems = check_rows(renamed)
    problems["column"] = problems["column"].map(mapping)
    good = values.notna().all(axis=1).to_numpy()
    result = frame.copy()
    predictions = pd.DataFrame(np.nan, index=frame.index, columns=PREDICTION_COLUMNS)
    if good.any():
        predictions.loc[good] = predictor.predict_frame(values[good]).to_numpy()
    for column in PREDICTION_COLUMNS:
        result[column] = predictions[column].round(3)
    result[PROBLEM_COLUMN] = _problem_text(problems, frame)
    return ScoreResult(table=result, problems=problems)


def _problem_text(problems: pd.DataFrame, frame: pd.DataFrame) -> pd.Series:
    """Per input row, ``"tempo: not a number ('fast'); key: missing"`` or empty."""
    text = pd.Series("", index=frame.index, dtype=object)
    if problems.empty:
        return text
    from virality.data import FIRST_DATA_ROW

    described = problems.assign(
        text=problems["column"] + ": " + problems["why"]
        + np.where(problems["why"] == "missing", "", " (" + problems["value"].map(shown) + ")"))
    joined = described.groupby("row")["text"].agg("; ".join)
    text.iloc[joined.index.to_numpy() - FIRST_DATA_ROW] = joined.to_numpy()
    return text


def score_file(in_path: str | Path, out_path: str | Path, predictor: Predictor) -> ScoreResult:
    """Read ``in_path``, score it, write ``out_path`` (CSV). ``DataError`` if unreadable."""
    result = score_frame(read_csv_file(in_path), predictor)
    try:
        result.table.to_csv(out_path, index=False)
    except OSError as err:
        raise DataError(f"cannot write {out_path}: {err.strerror}") from None
    return result


def problem_summary(problems: pd.DataFrame, limit: int = 20) -> list[str]:
    """Human lines ``"row 5, tempo: not a number ('fast')"``, at most ``limit`` plus a tail."""
    lines = [f"row {r.row}, {r.column}: {r.why}" + ("" if r.why == "missing" else f" ({shown(r.value)})")
             for r in problems.head(limit).itertuples()]
    if len(problems) > limit:
        lines.append(f"… and {len(problems) - limit} more problem(s)")
    return lines
