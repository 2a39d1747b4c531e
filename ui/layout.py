"""Page chrome: the page list and navigation, the title, the sidebar's honesty line."""

from __future__ import annotations

import streamlit as st

from ui.state import get_predictor, link_problems, sync_song_with_url
from virality.model.prediction import model_summary
from virality.model.report import NoResults, headline, load_results
from virality.plotting import LIGHT

# The app's pages, in menu order: (script, label, icon). The first is the home page ("/").
PAGES = (("pages/predict.py", "Predict", "🎚️"), ("pages/explain.py", "Explain", "🔍"),
         ("pages/what_if.py", "What-if", "🧪"), ("pages/batch.py", "Batch", "📋"),
         ("pages/model.py", "Model", "📈"))
NAV_SECTION = "Pages"
PHONE_WIDTH = 640  # px: at or below it Streamlit stacks columns and hides the sidebar

# Phones: the collapsed menu's button says "Pages"; Predict's compact score line
# (``st.container(key="score_line")``) stays in view while the controls scroll; on wide
# screens that line is hidden and the score column stays in view instead.
PAGE_CSS = f"""<style>
[data-testid="stExpandSidebarButton"]::after {{ content: "{NAV_SECTION}"; margin-left: 0.3rem; font-size: 0.9rem; }}
@media (max-width: {PHONE_WIDTH}px) {{
  div:has(> .st-key-score_line) {{ position: sticky; top: 3.75rem; z-index: 99; }}
  .st-key-score_line {{ background: var(--background-color, white); border-bottom: 1px solid {LIGHT};
                        padding: 0.25rem 0; }}
}}
@media (min-width: {PHONE_WIDTH + 1}px) {{
  div:has(> .st-key-score_line) {{ display: none; }}
  div:has(> .st-key-score_panel) {{ position: sticky; top: 4rem; align-self: flex-start; }}
}}
</style>"""


# Plotly's toolbar sat over the figures' titles (and, on a phone, over the plot): off on every
# page. Dragging still zooms and a double-click resets; Streamlit's own full-screen button stays.
PLOT_CONFIG = {"displayModeBar": False}


def chart(figure, key: str) -> None:
    """Draw a plotly ``figure`` full width with the app's plot config."""
    st.plotly_chart(figure, width="stretch", key=key, config=PLOT_CONFIG)


def run_app() -> None:
    """What ``app.py`` runs on every rerun: the page config, the labelled menu over ``PAGES``
    and the chosen page."""
    st.set_page_config(page_title="virality", page_icon="🎵", layout="wide")
    pages = [st.Page(path, title=label, icon=icon, default=index == 0)
             for index, (path, label, icon) in enumerate(PAGES)]
    st.navigation({NAV_SECTION: pages}, position="sidebar").run()


def page_link(label: str) -> None:
    """A link to the page called ``label`` in ``PAGES`` (e.g. "Open Predict" on What-if)."""
    path, _, icon = next(page for page in PAGES if page[1] == label)
    st.page_link(path, label=f"Open {label}", icon=icon)


def page_header(title: str, subtitle: str) -> None:
    """Call first on every page: the song from a link (a session's first run) and back into
    the address bar; the title; what a shared link got wrong; the sidebar's honesty line."""
    _route_through_app()
    sync_song_with_url()
    st.html(PAGE_CSS)
    st.title(title)
    st.caption(subtitle)
    if problems := link_problems():
        st.warning("This link had values that cannot be used; they take the typical track's value instead: "
                   + "; ".join(problems) + ".")
    with st.sidebar:
        st.markdown("### 🎵 virality")
        if sentence := honest_sentence():
            st.markdown(sentence)
        with st.expander("The model in numbers"):
            st.caption(model_summary(get_predictor(), shipped_cross_validation()))


@st.cache_data(show_spinner=False)
def _route_through_app() -> None:
    """Streamlit runs a page script by itself, in its old ``pages/``-folder mode (another menu,
    no song from the link), when the first visit a fresh server gets is a page's own address,
    e.g. a shared ``/explain?…`` link. Turn that mode off and rerun the same address through
    ``app.py``."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


@st.cache_data(show_spinner=False)
def honest_sentence() -> str | None:
    """The benchmark's one plain sentence on the shipped model (None without results)."""
    try:
        return headline(load_results(), get_predictor().info.model.arch)
    except NoResults:
        return None


@st.cache_data(show_spinner=False)
def shipped_cross_validation() -> dict | None:
    """The shipped recipe's grouped-CV metrics from the committed benchmark, if present."""
    try:
        results = load_results()
    except NoResults:
        return None
    return results["candidates"].get(get_predictor().info.model.arch)
