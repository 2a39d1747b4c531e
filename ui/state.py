"""The current song in ``st.session_state``, shared by every page, and the cached model."""

from __future__ import annotations

import streamlit as st
import torch

from virality.features import FEATURE_NAMES, default_song
from virality.model.prediction import Predictor, load_predictor
from virality.session import has_song, song_from_query, song_to_query

SONG_KEY = "song"
WIDGET_PREFIX = "w_"
URL_READ_KEY = "url_read"  # set once the session's first run has read the address bar
LINK_KEY = "link_problems"  # what the link the session opened with got wrong
LINK_SOURCE = "Song from a link"


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
    forget_link()
    for name in FEATURE_NAMES:
        st.session_state.pop(WIDGET_PREFIX + name, None)


def sync_song_with_url() -> None:
    """The one place the address bar is read: on a session's first run, take the song from its
    query parameters (a shared link, or a reload — a reload starts a new session); on every run
    write the current song back (``keep_song_in_url``). Later runs never read the URL: the song
    lives in ``st.session_state``. ``page_header`` calls this first on every page."""
    if not st.session_state.get(URL_READ_KEY):
        st.session_state[URL_READ_KEY] = True
        params = {name: st.query_params.get_all(name) for name in st.query_params}
        if has_song(params):
            song, problems = song_from_query(params)
            set_song(song, source=LINK_SOURCE)
            st.session_state[LINK_KEY] = problems
    keep_song_in_url()


def link_problems() -> list[str]:
    """What the opening link got wrong, until the song is changed (else [])."""
    return st.session_state.get(LINK_KEY, [])


def forget_link() -> None:
    """The user changed the song: what its link got wrong no longer applies (a control's
    ``on_change``, so the warning is gone in the same run)."""
    st.session_state.pop(LINK_KEY, None)


def keep_song_in_url() -> None:
    """Write the current song into the address bar, so a reload, a copied address or another
    page keeps it: at the start of every run (``sync_song_with_url``) and wherever a run
    changes the song (the Predict controls). Only a change is sent to the browser."""
    wanted = song_to_query(current_song())
    if any(st.query_params.get(name) != text for name, text in wanted.items()):
        others = {name: st.query_params.get_all(name) for name in st.query_params if name not in wanted}
        st.query_params.from_dict({**wanted, **others})  # the song first, in model order


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


KEPT_PREFIX = "kept_"


def keep(key: str) -> None:
    """A widget's ``on_change``: copy its value under a key of our own. Streamlit drops a
    widget's state whenever a run does not draw it (another page, or a control shown only for
    one choice), so the copy is what brings it back (``kept_value``, ``kept_index``)."""
    st.session_state[KEPT_PREFIX + key] = st.session_state[key]


def kept_value(key: str, default):
    """The value ``keep`` kept for widget ``key``, else ``default``."""
    return st.session_state.get(KEPT_PREFIX + key, default)


def kept_index(key: str, options: list[str]) -> int:
    """The position in ``options`` of the value ``keep`` kept for widget ``key`` (0 if none)."""
    kept = kept_value(key, None)
    return options.index(kept) if kept in options else 0
