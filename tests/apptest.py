"""Opening the app under Streamlit's AppTest, shared by every page's tests."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")


def as_read(markdown: str) -> str:
    """What a reader sees of an element's Markdown source: AppTest gives the source, where text
    the page passed through ``virality.markdown.escape_markdown`` carries backslash escapes."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def open_app(page: str | None = None, timeout: float = 120) -> AppTest:
    """Run ``app.py`` (the Predict page) once, then switch to ``page`` (e.g.
    ``"pages/what_if.py"``) when one is given, the way a visitor arrives from Predict.
    Either render raising is a test failure."""
    at = AppTest.from_file(APP, default_timeout=timeout).run()
    assert not at.exception, at.exception
    if page is not None:
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return at
