"""Guards that keep CI honest: the browser test cannot silently skip there (``.ci/run``
also refuses a run where no test or no browser test passed)."""

from __future__ import annotations

import pytest

from tests import browser


@pytest.fixture
def no_browser(monkeypatch):
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    monkeypatch.setattr(browser, "DEBIAN_CHROMEDRIVER", ("/nonexistent/chromedriver",))


def test_missing_browser_fails_under_ci(no_browser, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        browser.browser_binaries()


def test_missing_browser_skips_locally(no_browser, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium"):
        browser.browser_binaries()
