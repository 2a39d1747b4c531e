"""Page chrome: the page list and navigation, the title, the sidebar's honesty line."""

from __future__ import annotations

import streamlit as st

from ui.state import get_predictor
from virality.model.prediction import model_summary
from virality.model.report import NoResults, load_results

# The app's pages, in menu order: (script, label, icon). The first is the home page ("/").
PAGES = (("pages/predict.py", "Predict", "🎚️"), ("pages/explain.py", "Explain", "🔍"),
         ("pages/what_if.py", "What-if", "🧪"), ("pages/batch.py", "Batch", "📋"),
         ("pages/model.py", "Model", "📈"))


def navigation():
    """The page config and the labelled navigation menu over ``PAGES``; ``app.py`` runs what it returns."""
    st.set_page_config(page_title="virality", page_icon="🎵", layout="wide")
    pages = [st.Page(path, title=label, icon=icon, default=index == 0)
             for index, (path, label, icon) in enumerate(PAGES)]
    return st.navigation(pages, position="sidebar")


def page_link(label: str) -> None:
    """A link to the page called ``label`` in ``PAGES`` (e.g. "Open Predict" on What-if)."""
    path, _, icon = next(page for page in PAGES if page[1] == label)
    st.page_link(path, label=f"Open {label}", icon=icon)


def page_header(title: str, subtitle: str) -> None:
    """Draw the title and the sidebar's honesty line. Call first on every page."""
    st.title(title)
    st.caption(subtitle)
    with st.sidebar:
        st.markdown("### 🎵 virality")
        st.caption(model_summary(get_predictor(), shipped_cross_validation()))


@st.cache_data(show_spinner=False)
def shipped_cross_validation() -> dict | None:
    """The shipped recipe's grouped-CV metrics from the committed benchmark, if present."""
    try:
        results = load_results()
    except NoResults:
        return None
    return results["candidates"].get(get_predictor().info.model.arch)
