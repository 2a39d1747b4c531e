"""Batch in Chromium: what the browser shows of the Compare panel after a new upload.

The fixtures (one server and one browser for this module) are those of tests/test_browser.py.
"""

from __future__ import annotations

import pandas as pd
import pytest

from tests.browser import until, wait_idle
from tests.test_browser import driver, open_page, page, server  # noqa: F401 — pytest fixtures
from virality.data.demo import DEMO_CSV

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]  # one worker starts the servers


def upload(page, path) -> None:  # noqa: F811 — ``page`` is the fixture's browser
    page.find_element("css selector", '[data-testid="stFileUploader"] input[type="file"]').send_keys(str(path))
    wait_idle(page)


def shown_choices(page) -> list[str]:  # noqa: F811
    """The names the two Compare boxes show."""
    return [box.get_attribute("value") for box in page.find_elements("css selector", '[data-testid="stSelectbox"] input')]


def compared_names(page) -> list[str]:  # noqa: F811
    """The names in the comparison chart's legend: the tracks really compared."""
    return [t.text for t in page.find_elements("css selector", '[data-testid="stPlotlyChart"] .legendtext')]


def test_compare_names_match_the_tracks_compared_after_a_new_upload(page, tmp_path):  # noqa: F811
    open_page(page, "Batch")
    upload(page, DEMO_CSV)
    page.find_elements("css selector", '[data-testid="stSelectbox"] input')[1].click()
    until(page, lambda d: len(d.find_elements("css selector", "[role=option]")) >= 6, message="no options")
    page.find_elements("css selector", "[role=option]")[5].click()
    wait_idle(page)
    assert shown_choices(page) == compared_names(page)
    renamed = pd.read_csv(DEMO_CSV, dtype=str).assign(title=lambda f: [f"Other {i}" for i in range(len(f))])
    renamed.to_csv(tmp_path / "renamed.csv", index=False)
    upload(page, tmp_path / "renamed.csv")
    until(page, lambda d: all(n.startswith("Other") for n in shown_choices(d)), message="the boxes kept old names")
    assert shown_choices(page) == compared_names(page)  # the boxes name the tracks the chart compares
