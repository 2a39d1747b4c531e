"""virality: will this song take off on TikTok, and what would help it? Run ``streamlit run app.py``.

The app's one page list is ``ui.layout.PAGES``; this script only routes to the chosen page.
"""

from ui.layout import run_app

run_app()
