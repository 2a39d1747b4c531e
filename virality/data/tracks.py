"""The training data: the TikTok tracks CSV read, validated, de-duplicated by ``track_id``, split by group.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from virality.data.reading import DataError, read_csv_file
from virality.data.validation import check_rows, problem_rows
from virality.features import FEATURE_NAMES

TARGET = "popularity"
ID_COLUMN = "track_id"
REQUIRED_COLUMNS = (ID_COLUMN, TARGET, *FEATURE_NAMES)
GROUP_COLUMN = "group"  # one song: rows sharing a track_id or a lower-cased name + artist
NAME_COLUMNS, ARTIST_COLUMNS = ("track_name", "name", "title"), ("artist_name", "track_artist", "artist")
DRIVE_FILE_ID = "1LG642eXvzRxJq-UFX-Aqrxdra_4p2dKy"
DEFAULT_DOWNLOAD_DIR = Path("data")


@dataclass
class TrackData:
    """A validated, de-duplicated tracks table.

    ``tracks``: one row per ``track_id`` with the 12 characteristics (float) and
    ``popularity`` (median over the track's rows). ``problems``: the dropped rows' reasons.
    """

    tracks: pd.DataFrame
    n_rows: int
    problems: pd.DataFrame

    @property
    def n_bad_rows(self) -> int:
        return int(self.problems["row"].nunique()) if len(self.problems) else 0


def load_tracks(path: str | Path, keep_song_key: bool = False) -> TrackData:
    """Read a tracks CSV, drop and count bad rows, and keep one row per ``track_id``.

    Raises ``DataError`` when the file is missing, empty, not a CSV or lacks a required
    column. A track's popularity is the median over its rows (it appears in several
    playlists); its characteristics are the same on every row. ``group`` numbers songs: tracks
    sharing a lower-cased name + artist (another ``track_id`` of the same song) share a group,
    and every split is made by it. ``keep_song_key`` keeps that key as a ``song_key`` column.
    """
    frame = read_csv_file(path)
    if "duration" not in frame.columns and "duration_ms" in frame.columns:
        frame = frame.rename(columns={"duration_ms": "duration"})
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    if frame.empty:
        raise DataError(f"{path}: has a header but no rows")
    values, problems = check_rows(frame, (TARGET, *FEATURE_NAMES))
    bad_target = values[TARGET].notna() & ((values[TARGET] < 0) | (values[TARGET] > 100))
    values.loc[bad_target, TARGET] = np.nan
    ids = frame[ID_COLUMN].astype("string").str.strip()
    no_id = ids.isna() | (ids == "")
    extra = []
    if bad_target.any():
        extra.append(problem_rows(frame, bad_target, TARGET, "popularity must be 0–100"))
    if no_id.any():
        extra.append(problem_rows(frame, no_id, ID_COLUMN, "missing"))
    problems = pd.concat([problems, *extra], ignore_index=True) if extra else problems
    good = values.notna().all(axis=1) & ~no_id
    if not good.any():
        raise DataError(f"{path}: no usable rows ({len(frame)} rows, all with problems)")
    values[ID_COLUMN] = ids
    values["song_key"] = song_keys(frame)
    tracks = (values[good].groupby(ID_COLUMN, sort=True)
              .agg({**{n: "first" for n in FEATURE_NAMES}, TARGET: "median", "song_key": "first"}).reset_index())
    keys = tracks["song_key"] if keep_song_key else tracks.pop("song_key")
    tracks[GROUP_COLUMN] = song_groups(tracks[ID_COLUMN].to_numpy(object), keys.to_numpy(object))
    return TrackData(tracks=tracks, n_rows=len(frame), problems=problems)


def song_keys(frame: pd.DataFrame) -> pd.Series:
    """Lower-cased, stripped ``name + artist`` per row (None where either is missing or the
    file has no such columns): the same song under another ``track_id`` (a re-release, a
    single and its album) gets the same key."""
    name = next((frame[c] for c in NAME_COLUMNS if c in frame.columns), None)
    artist = next((frame[c] for c in ARTIST_COLUMNS if c in frame.columns), None)
    if name is None or artist is None:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    name, artist = (s.astype("string").str.strip().str.lower() for s in (name, artist))
    key = name + "\x1f" + artist
    return key.where(name.notna() & artist.notna() & (name != "") & (artist != "")).astype(object)


def song_groups(*keys: np.ndarray) -> np.ndarray:
    """(n,) group numbers 0…g−1 such that rows sharing any key (e.g. a ``track_id``, a
    ``song_keys`` value; None/NaN never match) are in one group: the connected components
    of "shares a key", by union-find. Split by these groups and no song sits on both sides."""
    n = len(keys[0])
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for column in keys:
        first: dict = {}
        for i, key in enumerate(column):
            if key is None or key is pd.NA or (isinstance(key, float) and np.isnan(key)):
                continue
            j = first.setdefault(key, i)
            a, b = root(i), root(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return np.unique([root(i) for i in range(n)], return_inverse=True)[1]


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def group_split(ids: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Split row positions into parts whose ``ids`` never overlap.

    ``ids``: shape (n,). ``fractions`` sum to 1 (e.g. ``(0.7, 0.15, 0.15)``). Returns one
    array of row positions per fraction; all rows of one id land in the same part.
    """
    unique = np.unique(ids)
    order = np.random.default_rng(seed).permutation(len(unique))
    bounds = np.round(np.cumsum(fractions) * len(unique)).astype(int)
    parts, start = [], 0
    for stop in bounds:
        chosen = set(unique[order[start:stop]])
        parts.append(np.flatnonzero(np.isin(ids, list(chosen))))
        start = stop
    return parts


def group_kfold(ids: np.ndarray, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_splits`` (train, test) position pairs; each id is in exactly one test fold."""
    unique = np.unique(ids)
    fold_of = dict(zip(unique[np.random.default_rng(seed).permutation(len(unique))],
                       np.arange(len(unique)) % n_splits))
    folds = np.array([fold_of[i] for i in ids])
    return [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(n_splits)]


def download(dest_dir: str | Path = DEFAULT_DOWNLOAD_DIR, file_id: str = DRIVE_FILE_ID) -> tuple[Path, TrackData]:
    """Fetch the project's published preprocessed data set with gdown and validate it.

    Returns the saved path and its ``TrackData``; raises ``DataError`` when the download
    fails or the file does not fit the schema (the bad file is kept for inspection).
    """
    import gdown

    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / "tiktok_tracks.csv"
    try:
        result = gdown.download(id=file_id, output=str(target), quiet=False)
    except Exception as err:  # gdown raises many types (network, permission, HTML page)
        raise DataError(f"download of Google Drive file {file_id} failed: {err}") from None
    if not result or not target.exists():
        raise DataError(f"download of Google Drive file {file_id} failed: nothing was saved")
    try:
        return target, load_tracks(target)
    except DataError as err:
        raise DataError(f"the downloaded file does not fit the tracks schema: {err}") from None
