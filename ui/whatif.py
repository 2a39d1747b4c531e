"""The What-if page's search, cached per request (``st.cache_data``)."""

from __future__ import annotations

import streamlit as st

from ui.state import get_predictor
from virality.whatif.search import WhatIfResult, search


@st.cache_data(max_entries=64, show_spinner="Searching for edits…")
def find_edits(song_items: tuple, goal: str, amount: float, vary: tuple, bounds: tuple, max_changes: int,
               k: int) -> WhatIfResult:
    gain, target = (amount, None) if goal == "gain" else (None, amount)
    return search(get_predictor(), dict(song_items), gain=gain, target=target, vary=list(vary),
                  bounds={n: (lo, hi) for n, lo, hi in bounds}, max_changes=max_changes, k=k)
