"""The other side of TikTok fit: the wider Spotify catalogue, beside the TikTok tracks.

``load_fit_data`` reads both files (the TikTok tracks with ``load_tracks``; the catalogue,
``spotify_songs.csv``, with its own column names) into one table: the 12 characteristics,
``tiktok`` (1 for the TikTok side, 0 for the catalogue), the release ``year``, ``popularity``,
and a ``group`` per song (``track_id`` or lower-cased name + artist, across both files), by
which every split is made. The catalogue reaches back decades while the TikTok tracks are
recent: ``year`` is kept so every figure can also be given against catalogue tracks released
``ERA_YEAR`` or later (the era check).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from virality.data.reading import DataError, read_csv_file
from virality.data.tracks import GROUP_COLUMN, ID_COLUMN, TARGET, file_sha256, load_tracks, song_groups, song_keys
from virality.data.validation import check_rows
from virality.features import FEATURE_NAMES

FIT_TARGET = "tiktok"
ERA_YEAR = 2017
CATALOGUE_RENAMES = {"duration_ms": "duration", "track_popularity": TARGET}
RELEASE_COLUMNS = ("release_date", "track_album_release_date")


@dataclass
class FitData:
    """``table``: one row per track of either file with ``FEATURE_NAMES``, ``tiktok`` (0/1),
    ``year`` (float, NaN if unknown), ``popularity``, ``group``; ``sources``: each file's name,
    SHA-256, rows read and tracks kept."""

    table: pd.DataFrame
    sources: dict

    @property
    def X(self) -> np.ndarray:
        """(n, 12) characteristics in Spotify units."""
        return self.table[list(FEATURE_NAMES)].to_numpy(np.float64)

    @property
    def y(self) -> np.ndarray:
        """(n,) 1 = TikTok side, 0 = catalogue."""
        return self.table[FIT_TARGET].to_numpy(np.int64)

    @property
    def groups(self) -> np.ndarray:
        return self.table[GROUP_COLUMN].to_numpy()

    def era_mask(self, positions: np.ndarray | None = None) -> np.ndarray:
        """Rows kept for the era check: every TikTok track, catalogue tracks from ``ERA_YEAR`` on."""
        table = self.table if positions is None else self.table.iloc[positions]
        return ((table[FIT_TARGET] == 1) | (table["year"] >= ERA_YEAR)).to_numpy()


def release_year(cells: pd.Series) -> pd.Series:
    """Release dates as written (``2019-06-14``, ``2019``, ``6/5/2007``) → year as float (NaN if none)."""
    text = cells.astype("string").str.strip()
    year = text.str.extract(r"^(\d{4})")[0].fillna(text.str.extract(r"(\d{4})$")[0])
    return pd.to_numeric(year, errors="coerce").astype(float)


def load_catalogue(path: str | Path) -> pd.DataFrame:
    """The catalogue CSV → one row per ``track_id`` (first row kept; a track repeats across
    playlists) with the 12 characteristics, ``popularity``, ``year``, ``song_key``; rows with a
    bad characteristic are dropped. ``DataError`` when the file lacks a needed column."""
    frame = read_csv_file(path).rename(columns=CATALOGUE_RENAMES)
    missing = [c for c in (ID_COLUMN, TARGET, *FEATURE_NAMES) if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} for a catalogue file")
    values, _ = check_rows(frame, (TARGET, *FEATURE_NAMES))
    values[ID_COLUMN] = frame[ID_COLUMN].astype("string").str.strip()
    values["year"] = release_year(frame[next((c for c in RELEASE_COLUMNS if c in frame.columns), ID_COLUMN)])
    values["song_key"] = song_keys(frame)
    good = values[list(FEATURE_NAMES)].notna().all(axis=1) & values[ID_COLUMN].notna()
    return values[good].drop_duplicates(ID_COLUMN, keep="first").reset_index(drop=True)


def load_fit_data(tiktok_path: str | Path, catalogue_path: str | Path) -> FitData:
    """Both sides in one table, grouped by song across the two files (see the module doc)."""
    tiktok = load_tracks(tiktok_path, keep_song_key=True).tracks
    raw = read_csv_file(tiktok_path)
    dates = next((c for c in RELEASE_COLUMNS if c in raw.columns), None)
    years = (release_year(raw[dates]).groupby(raw[ID_COLUMN].astype("string").str.strip()).first()
             if dates else pd.Series(dtype=float))
    tiktok["year"] = tiktok[ID_COLUMN].map(years).astype(float)
    catalogue = load_catalogue(catalogue_path)
    columns = [ID_COLUMN, *FEATURE_NAMES, TARGET, "year", "song_key"]
    table = pd.concat([tiktok[columns].assign(**{FIT_TARGET: 1}), catalogue[columns].assign(**{FIT_TARGET: 0})],
                      ignore_index=True)
    table[GROUP_COLUMN] = song_groups(table[ID_COLUMN].to_numpy(object), table.pop("song_key").to_numpy(object))
    sources = {side: {"path_name": Path(p).name, "sha256": file_sha256(p), "tracks": int((table[FIT_TARGET] == y).sum())}
               for side, p, y in (("tiktok", tiktok_path, 1), ("catalogue", catalogue_path, 0))}
    return FitData(table, sources)
