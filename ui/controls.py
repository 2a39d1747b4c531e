"""One control per characteristic, built from ``virality.features.FEATURES``."""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from ui.state import WIDGET_PREFIX, current_song
from virality.features import FEATURES, KEY_NAMES, MODE_NAMES, Feature, format_duration, parse_duration
from virality.markdown import escape_markdown


def song_controls(columns: int = 2, marks: Mapping[str, tuple[float, str]] | None = None) -> dict[str, float]:
    """Render the 12 controls for the current song; return the song they now show.

    ``marks``: ``{name: (value, caption)}`` — the caption is shown under that control while it
    still shows ``value`` (e.g. "measured from audio")."""
    marks = marks or {}
    song = current_song()
    slots = st.columns(columns)
    for index, feature in enumerate(FEATURES):
        key = WIDGET_PREFIX + feature.name
        if key not in st.session_state:
            st.session_state[key] = _widget_value(feature, song[feature.name])
        with slots[index % columns]:
            song[feature.name] = _render(feature, key, song[feature.name])
            if feature.name in marks and abs(song[feature.name] - marks[feature.name][0]) <= feature.step / 2 + 1e-6:
                st.caption(marks[feature.name][1])
    st.session_state["song"] = song
    return song


def _widget_value(feature: Feature, value: float):
    if feature.kind in ("key", "mode"):
        return int(value)
    if feature.kind == "duration":
        return format_duration(value)
    return float(feature.snap(value))


def _render(feature: Feature, key: str, previous: float) -> float:
    label = f"{feature.label} ({feature.unit})"
    if feature.kind == "key":
        return float(st.selectbox(label, list(range(12)), format_func=lambda k: KEY_NAMES[k], key=key,
                                  help=feature.help))
    if feature.kind == "mode":
        return float(st.radio(label, [1, 0], format_func=lambda m: MODE_NAMES[m], key=key, horizontal=True,
                              help=feature.help))
    if feature.kind == "duration":
        text = st.text_input(label, key=key, help=feature.help)
        try:
            ms = parse_duration(text)
        except ValueError as err:
            st.error(f"{escape_markdown(err)}; still using {format_duration(previous)}")
            return previous
        if not feature.low <= ms <= feature.high:
            st.error(f"length must be between {format_duration(feature.low)} and {format_duration(feature.high)}; "
                     f"still using {format_duration(previous)}")
            return previous
        return ms
    return float(st.slider(label, float(feature.low), float(feature.high), step=float(feature.step), key=key,
                           help=feature.help, format=feature.value_format))

