"""The What-if page's search, cached per request (``st.cache_data``, shared by every session:
keyed by a song's numbers and the options, bounded, expiring after ``ui.state.SHARED_CACHE_TTL``)."""

from __future__ import annotations

import streamlit as st

from ui.state import SHARED_CACHE_TTL, get_predictor
from virality.whatif.search import WhatIfResult, search


@st.cache_data(max_entries=64, ttl=SHARED_CACHE_TTL, show_spinner="Searching for edits…")
def find_edits(song_items: tuple, goal: str, amount: float, vary: tuple, bounds: tuple, max_changes: int,
               k: int, target_kind: str = "popularity") -> WhatIfResult:
    """``search`` aimed at ``target_kind`` (``virality.whatif.search.TARGET_KINDS``): ``goal`` "gain"
    raises it by ``amount``, "target" reaches ``amount``."""
    gain, target = (amount, None) if goal == "gain" else (None, amount)
    return search(get_predictor(), dict(song_items), gain=gain, target=target, vary=list(vary),
                  bounds={n: (lo, hi) for n, lo, hi in bounds}, max_changes=max_changes, k=k,
                  target_kind=target_kind)
