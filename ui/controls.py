"""One control per characteristic, built from ``virality.features.FEATURES``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import streamlit as st

from ui.state import SONG_KEY, WIDGET_PREFIX, current_song, forget_link, keep_song_in_url
from virality.features import BY_NAME, FEATURES, KEY_NAMES, MODE_NAMES, Feature, format_duration, parse_duration


class Mark(NamedTuple):
    """A caption under one control: ``caption`` while the control shows ``value`` (e.g.
    "measured from audio"), ``otherwise`` (may be empty) when it shows something else."""

    value: float
    caption: str
    otherwise: str = ""


def shows_value(name: str, shown: float, value: float) -> bool:
    """Whether a control showing ``shown`` shows ``value`` (to within half its step: a length of
    17.5 s shows as 0:18)."""
    return abs(shown - value) <= BY_NAME[name].step / 2 + 1e-6


def song_controls(columns: int = 2, marks: Mapping[str, Mark] | None = None) -> dict[str, float]:
    """Render the 12 controls for the current song; return the song they now show.

    ``marks``: ``{name: Mark}`` — captions under the controls (see ``Mark``)."""
    marks = marks or {}
    song = current_song()
    for index, feature in enumerate(FEATURES):
        key = WIDGET_PREFIX + feature.name
        if key not in st.session_state:
            st.session_state[key] = _widget_value(feature, song[feature.name])
        if index % columns == 0:  # one row of ``columns`` at a time: stacked on a phone, still in order
            slots = st.columns(columns)
        with slots[index % columns]:
            song[feature.name] = _render(feature, key, song[feature.name])
            mark = marks.get(feature.name)
            if mark is not None:
                caption = mark.caption if shows_value(feature.name, song[feature.name], mark.value) else mark.otherwise
                if caption:
                    st.caption(caption)
    st.session_state[SONG_KEY] = song
    keep_song_in_url()
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
                                  help=feature.help, on_change=forget_link))
    if feature.kind == "mode":
        return float(st.radio(label, [1, 0], format_func=lambda m: MODE_NAMES[m], key=key, horizontal=True,
                              help=feature.help, on_change=forget_link))
    if feature.kind == "duration":
        text = st.text_input(label, key=key, help=feature.help, on_change=forget_link)
        try:
            ms = parse_duration(text)
        except ValueError as err:
            st.error(f"{err}; still using {format_duration(previous)}")
            return previous
        if not feature.low <= ms <= feature.high:
            st.error(f"length must be between {format_duration(feature.low)} and {format_duration(feature.high)}; "
                     f"still using {format_duration(previous)}")
            return previous
        return ms
    return float(st.slider(label, float(feature.low), float(feature.high), step=float(feature.step), key=key,
                           help=feature.help, format=feature.value_format, on_change=forget_link))

