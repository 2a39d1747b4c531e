"""Opening the app under Streamlit's AppTest, shared by every page's tests."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
SCORE_LABEL = "Predicted popularity (0–100)"  # the Predict page's score metric
# What must never reach the screen or a report: Python/pandas missing values, a signed zero.
FORBIDDEN = re.compile(r"(?<![\w.])(None|NaN|nan|[-−]0\.0+)(?![\w.\d])")


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


def metric(at: AppTest, label: str) -> str:
    """The value the one metric labelled ``label`` shows (metrics take no key)."""
    values = [m.value for m in at.metric if m.label == label]
    assert len(values) == 1, (label, [m.label for m in at.metric])
    return values[0]


def predict_score(at: AppTest) -> float:
    """The popularity score the Predict page shows."""
    return float(metric(at, SCORE_LABEL))
