"""The Explain page's computations, cached per song, baseline and method (``st.cache_data``).

Songs travel as ``song_items`` tuples (hashable, so the cache can key on them)."""

from __future__ import annotations

import streamlit as st

from ui.state import get_predictor
from virality.data.demo import demo_tracks
from virality.explain.explanation import Explanation, explain_song
from virality.explain.views import (
    GLOBAL_SAMPLE_TRACKS,
    H_SAMPLE_TRACKS,
    friedman_h,
    global_importance,
    pair_grid,
    pairwise_interactions,
    sample_typical_tracks,
    sensitivity_curves,
)
from virality.features import FEATURE_NAMES


def song_items(values: dict) -> tuple:
    """A song as a hashable ``((name, value), …)`` tuple in model order: the caches' key."""
    return tuple((n, float(values[n])) for n in FEATURE_NAMES)


@st.cache_data(max_entries=128, show_spinner=False)
def explain(song_items: tuple, baseline_items: tuple, label: str, method: str) -> Explanation:
    return explain_song(get_predictor(), dict(song_items), dict(baseline_items), method=method, baseline_label=label)


@st.cache_data(max_entries=64, show_spinner=False)
def curves(song_items: tuple):
    return sensitivity_curves(get_predictor(), dict(song_items))


@st.cache_data(max_entries=16, show_spinner="Averaging over typical tracks…")
def importance(method: str, baseline_items: tuple):
    sample = sample_typical_tracks(get_predictor().info.distribution, GLOBAL_SAMPLE_TRACKS)
    return global_importance(get_predictor(), demo_tracks(), sample, method, dict(baseline_items))


@st.cache_data(max_entries=64, show_spinner=False)
def song_interactions(song_items: tuple, baseline_items: tuple):
    return pairwise_interactions(get_predictor(), dict(song_items), dict(baseline_items))


@st.cache_data(max_entries=2, show_spinner="Measuring interactions over typical tracks…")
def typical_interactions():
    return friedman_h(get_predictor(), sample_typical_tracks(get_predictor().info.distribution, H_SAMPLE_TRACKS, seed=1))


@st.cache_data(max_entries=64, show_spinner=False)
def grid(song_items: tuple, first: str, second: str):
    return pair_grid(get_predictor(), dict(song_items), first, second)
