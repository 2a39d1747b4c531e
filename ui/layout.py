"""Page chrome: config, title, the sidebar with navigation and the model's honesty line."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.state import get_predictor
from virality.model.prediction import model_summary
from virality.model.report import NoResults, load_results

ROOT = Path(__file__).resolve().parent.parent
PAGES = [("app.py", "Predict", "🎚️"), ("pages/2_Explain.py", "Explain", "🔍"),
         ("pages/3_What_if.py", "What-if", "🧪"), ("pages/4_Batch.py", "Batch", "📋"),
         ("pages/5_Model.py", "Model", "📈")]


def available_pages() -> list[tuple[str, str, str]]:
    """The ``PAGES`` whose script exists; empty for a one-page app.

    Streamlit registers pages (and so accepts ``st.page_link``) only when ``pages/`` holds
    a page: with Predict alone, linking to ``app.py`` raises StreamlitPageNotFoundError in a
    real browser session (AppTest does not see it), so a lone page gets no navigation.
    """
    present = [page for page in PAGES if (ROOT / page[0]).exists()]
    return present if len(present) > 1 else []


def page_header(title: str, subtitle: str) -> None:
    """Set the page config, draw the title and the sidebar. Call first on every page."""
    st.set_page_config(page_title=f"virality · {title}", page_icon="🎵", layout="wide")
    st.title(title)
    st.caption(subtitle)
    with st.sidebar:
        st.markdown("### 🎵 virality")
        for path, label, icon in available_pages():
            st.page_link(path, label=label, icon=icon)
        st.divider()
        st.caption(model_summary(get_predictor(), shipped_cross_validation()))


@st.cache_data(show_spinner=False)
def shipped_cross_validation() -> dict | None:
    """The shipped recipe's grouped-CV metrics from the committed benchmark, if present."""
    try:
        results = load_results()
    except NoResults:
        return None
    return results["candidates"].get(get_predictor().metadata["model"]["arch"])
