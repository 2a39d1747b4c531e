"""The current song in ``st.session_state``, shared by every page, and the cached model."""

from __future__ import annotations

import streamlit as st
import torch

from virality.features import FEATURE_NAMES, default_song
from virality.model.prediction import Predictor, load_predictor

SONG_KEY = "song"
WIDGET_PREFIX = "w_"


@st.cache_resource(show_spinner="Loading the model…")
def get_predictor() -> Predictor:
    """The bundled model, loaded once per server process.

    One torch thread: a single song is latency-bound, and with two threads a busy second
    core made small jobs many times slower on these machines.
    """
    torch.set_num_threads(1)
    return load_predictor()


def current_song() -> dict[str, float]:
    """The song every page works on (Spotify units); the typical track at first."""
    if SONG_KEY not in st.session_state:
        st.session_state[SONG_KEY] = default_song()
    return dict(st.session_state[SONG_KEY])


def set_song(song: dict[str, float], source: str | None = None) -> None:
    """Replace the current song (call from a widget callback). The Predict controls are
    rebuilt from it on their next render."""
    st.session_state[SONG_KEY] = {n: float(song[n]) for n in FEATURE_NAMES}
    st.session_state["song_source"] = source
    for name in FEATURE_NAMES:
        st.session_state.pop(WIDGET_PREFIX + name, None)


HISTORY_KEY = "scored_songs"
HISTORY_SIZE = 8


def remember_song(label: str, song: dict[str, float]) -> None:
    """Add a song the user scored to this session's history (newest first, no duplicates,
    at most ``HISTORY_SIZE``); other pages offer them, e.g. as a baseline on Explain."""
    values = {n: float(song[n]) for n in FEATURE_NAMES}
    history = [(old_label, old) for old_label, old in st.session_state.get(HISTORY_KEY, []) if old != values]
    st.session_state[HISTORY_KEY] = [(label, values), *history][:HISTORY_SIZE]


def scored_songs() -> dict[str, dict[str, float]]:
    """The songs scored this session, label → song, newest first."""
    return {label: dict(song) for label, song in st.session_state.get(HISTORY_KEY, [])}


def keep(key: str) -> None:
    """Streamlit drops a widget's state when another page runs: keep a copy to restore."""
    st.session_state["kept_" + key] = st.session_state[key]


def kept_index(key: str, options: list[str]) -> int:
    kept = st.session_state.get("kept_" + key)
    return options.index(kept) if kept in options else 0
