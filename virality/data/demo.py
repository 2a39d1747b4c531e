"""The invented demo tracks shipped with the app (also the README's example CSV)."""

from __future__ import annotations

import functools

import pandas as pd

from virality.config import DEMO_CSV
from virality.data.validation import check_rows
from virality.features import FEATURE_NAMES


def demo_tracks() -> pd.DataFrame:
    """The demo tracks: ``title``, ``artist`` and the 12 characteristics (``duration`` in ms).
    A fresh copy each call, so callers may change it."""
    return _read_demo_tracks().copy()


@functools.lru_cache(maxsize=1)
def _read_demo_tracks() -> pd.DataFrame:
    """Read and checked once per process: the file ships with the app (every Predict rerun lists it)."""
    raw = pd.read_csv(DEMO_CSV, dtype=str).rename(columns={"duration_ms": "duration"})
    values, problems = check_rows(raw)
    if len(problems):
        raise ValueError(f"{DEMO_CSV} has invalid values: {problems.to_dict('records')}")
    return pd.concat([raw[["title", "artist"]], values[list(FEATURE_NAMES)]], axis=1)


def demo_song(title: str) -> dict[str, float]:
    """The characteristics of the demo track called ``title``."""
    tracks = demo_tracks().set_index("title")
    if title not in tracks.index:
        raise ValueError(f"no demo track called {title!r}; there are: {', '.join(tracks.index)}")
    return {n: float(tracks.loc[title, n]) for n in FEATURE_NAMES}
