"""The Explain page's computations, cached per song, baseline and method (``st.cache_data``).

Songs travel as ``song_items`` tuples (hashable, so the cache can key on them). The caches are
shared by every session: keyed by numbers and options only, bounded, expiring
(``ui.state.SHARED_CACHE_TTL``)."""

from __future__ import annotations

import dataclasses

import streamlit as st

from ui.state import SHARED_CACHE_TTL, get_predictor
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


def explain(song_items: tuple, baseline_items: tuple, label: str, method: str,
            target: str = "popularity") -> Explanation:
    """The cached explanation of ``target`` (``virality.explain.methods.TARGETS``), labelled
    after the cache: a label can hold an audio file's name."""
    return dataclasses.replace(explain_numbers(song_items, baseline_items, method, target), baseline_label=label)


@st.cache_data(max_entries=128, ttl=SHARED_CACHE_TTL, show_spinner=False)
def explain_numbers(song_items: tuple, baseline_items: tuple, method: str, target: str = "popularity") -> Explanation:
    return explain_song(get_predictor(), dict(song_items), dict(baseline_items), method=method, target=target)


@st.cache_data(max_entries=64, ttl=SHARED_CACHE_TTL, show_spinner=False)
def curves(song_items: tuple, target: str = "popularity"):
    return sensitivity_curves(get_predictor(), dict(song_items), target=target)


@st.cache_data(max_entries=16, ttl=SHARED_CACHE_TTL, show_spinner="Averaging over typical tracks…")
def importance(method: str, baseline_items: tuple, target: str = "popularity"):
    sample = sample_typical_tracks(get_predictor().info.distribution, GLOBAL_SAMPLE_TRACKS)
    return global_importance(get_predictor(), demo_tracks(), sample, method, dict(baseline_items), target=target)


@st.cache_data(max_entries=64, ttl=SHARED_CACHE_TTL, show_spinner=False)
def song_interactions(song_items: tuple, baseline_items: tuple, target: str = "popularity"):
    return pairwise_interactions(get_predictor(), dict(song_items), dict(baseline_items), target=target)


@st.cache_data(max_entries=4, ttl=SHARED_CACHE_TTL, show_spinner="Measuring interactions over typical tracks…")
def typical_interactions(target: str = "popularity"):
    sample = sample_typical_tracks(get_predictor().info.distribution, H_SAMPLE_TRACKS, seed=1)
    return friedman_h(get_predictor(), sample, target=target)


@st.cache_data(max_entries=64, ttl=SHARED_CACHE_TTL, show_spinner=False)
def grid(song_items: tuple, first: str, second: str, target: str = "popularity"):
    return pair_grid(get_predictor(), dict(song_items), first, second, target=target)
