"""Helpers for the real-browser tests: a ``streamlit run`` server and headless Chromium.

Kept free of page specifics so each page's test is a few lines: ``open_page``,
``by_text``, ``labelled``, ``press``, ``wait_idle``, ``screenshot``. Debian's Chromium
and chromedriver only: Selenium is given the driver path, so Selenium Manager never
downloads anything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"
DOWNLOADS = OUTPUT / "downloads"
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--window-size=1400,1600")
DEBIAN_CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
TIMEOUT = 90  # seconds: a cold start imports torch and loads the model on a busy 2-core machine


def browser_binaries() -> tuple[str, str]:
    """``(chromium, chromedriver)`` paths; fail under CI, skip elsewhere, when missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or next((p for p in DEBIAN_CHROMEDRIVER if Path(p).exists()), None)
    if chromium and driver:
        return chromium, driver
    reason = "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(script: str = "app.py", log: Path | None = None) -> Iterator[str]:
    """Run ``streamlit run script`` on a free localhost port; yield its base URL."""
    port = free_port()
    log = log or OUTPUT / "streamlit.log"
    log.parent.mkdir(exist_ok=True)
    with log.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
        try:
            wait_healthy(port, server)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()


def wait_healthy(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {server.returncode}; see test-output/streamlit.log")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        time.sleep(0.2)
    raise TimeoutError(f"streamlit did not answer /_stcore/health within {TIMEOUT} s")


def chromium(chromium_path: str, driver_path: str):
    """A headless Chromium with a fresh profile (caller quits it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='virality-chromium-')}")
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    options.add_experimental_option("prefs", {"download.default_directory": str(DOWNLOADS),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    return driver


# --- page steps -------------------------------------------------------------------------

def until(driver, condition: Callable, timeout: float = TIMEOUT, message: str = ""):
    """Poll ``condition(driver)`` until it is truthy. An element Streamlit replaced between
    finding it and reading it (a rerun redraws the page) counts as "not yet", not a failure."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: condition(d), message)


def script_state(driver) -> str:
    from selenium.webdriver.common.by import By

    apps = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stApp"]')
    return apps[0].get_attribute("data-test-script-state") if apps else "absent"


def wait_idle(driver, settle: float = 0.6) -> None:
    """Wait until the script run has finished, every element is drawn and it stayed so for
    ``settle`` seconds (a key press can start its rerun a moment after it is sent; on a cold
    browser a widget is a grey skeleton for seconds after the run ends, while its code loads)."""
    calm_since = [None]
    busy = '[data-testid="stStatusWidget"], [data-testid="stSkeleton"]'

    def calm(d) -> bool:
        if script_state(d) != "notRunning" or d.find_elements("css selector", busy):
            calm_since[0] = None
            return False
        calm_since[0] = calm_since[0] or time.monotonic()
        return time.monotonic() - calm_since[0] >= settle

    until(driver, calm, message="the app never finished its rerun")


def assert_no_exception(driver) -> None:
    """Streamlit shows an uncaught exception as an ``stException`` box."""
    from selenium.webdriver.common.by import By

    boxes = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not boxes, f"the page shows a traceback: {boxes[0].text[:500]}"


def by_text(driver, text: str, css: str = "*", timeout: float = TIMEOUT):
    """The first visible element matching ``css`` whose own text contains ``text``."""
    from selenium.webdriver.common.by import By

    def find(d):
        for element in d.find_elements(By.CSS_SELECTOR, css):
            with contextlib.suppress(Exception):
                if text in element.text and element.is_displayed():
                    return element
        return False

    return until(driver, find, timeout, f"no visible {css} with text {text!r}")


def open_app(driver, base_url: str, address: str = "/") -> None:
    """A new session at ``base_url + address`` (e.g. ``"/explain?tempo=128"``)."""
    driver.get(base_url + address)
    until(driver, lambda d: script_state(d) not in ("absent", "initial"), message="the app never started")
    wait_idle(driver)
    assert_no_exception(driver)


PHONE = (390, 844)  # an iPhone 12–15's CSS pixels
DESKTOP = (1400, 1600)


def is_phone(driver) -> bool:
    return driver.execute_script("return window.innerWidth") <= 640


def open_page(driver, label: str) -> None:
    """Go to a page the way a person does: click its link in the sidebar's menu (same session).
    On a phone the menu is folded behind the "Pages" button: unfold it first, fold it after."""
    show_menu(driver)
    link = by_text(driver, label, '[data-testid="stSidebar"] [data-testid="stSidebarNavLink"]')
    link.click()
    until(driver, lambda d: d.find_elements("css selector", "h1") and label in d.find_element("css selector", "h1").text,
          message=f"page {label!r} did not open")
    wait_idle(driver)
    if is_phone(driver):
        click_if_shown(driver, '[data-testid="stSidebarCollapseButton"] button')
        until(driver, lambda d: not d.find_element("css selector", '[data-testid="stSidebar"]').is_displayed()
              or d.find_element("css selector", '[data-testid="stSidebar"]').rect["x"] < -100,
              timeout=10, message="the menu did not fold away")
    assert_no_exception(driver)


def show_menu(driver) -> None:
    """Unfold the sidebar if it is folded (always on a phone; on a desktop once a person folded it)."""
    if click_if_shown(driver, '[data-testid="stExpandSidebarButton"]'):
        until(driver, lambda d: d.find_element("css selector", '[data-testid="stSidebar"]').rect["x"] >= 0,
              timeout=10, message="the menu did not unfold")
        time.sleep(0.3)  # the slide-in animation


def click_if_shown(driver, css: str) -> bool:
    found = [e for e in driver.find_elements("css selector", css) if e.is_displayed()]
    if found:
        found[0].click()
    return bool(found)


def labelled(driver, label: str, css: str = "input"):
    """The input (or ``css``) inside the widget whose label contains ``label``."""
    from selenium.webdriver.common.by import By

    def find(d):
        for widget_label in d.find_elements(By.CSS_SELECTOR, '[data-testid="stWidgetLabel"]'):
            if label in widget_label.text:
                widget = widget_label.find_element(By.XPATH, "./ancestor::*[@data-testid='stElementContainer'][1]")
                found = widget.find_elements(By.CSS_SELECTOR, css)
                if found:
                    return found[0]
        return False

    return until(driver, find, message=f"no widget labelled {label!r}")


def press(driver, element, *keys: str) -> None:
    """Focus ``element`` with the keyboard's focus and press ``keys`` one by one."""
    from selenium.webdriver.common.action_chains import ActionChains

    driver.execute_script("arguments[0].focus()", element)
    chain = ActionChains(driver)
    for key in keys:
        chain.send_keys(key).pause(0.05)
    chain.perform()


def type_over(driver, element, text: str) -> None:
    """Replace what a text or number field holds with ``text`` and press Enter, as a person
    does: Ctrl+A (Control held only for the A; a modifier sent inside ``press`` stays held for
    every key after it), then the text."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver.execute_script("arguments[0].focus()", element)
    (ActionChains(driver).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).pause(0.05)
     .send_keys(text).pause(0.05).send_keys(Keys.ENTER).perform())


def metric_value(driver, label: str, timeout: float = TIMEOUT) -> str:
    """The displayed value of the ``st.metric`` whose label contains ``label``, once it is
    drawn (on a loaded machine the page can report its run finished a moment before the
    metric's text is on screen)."""
    from selenium.webdriver.common.by import By

    def find(d) -> str | None:
        for metric in d.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
            if label in metric.find_element(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]').text:
                return metric.find_element(By.CSS_SELECTOR, '[data-testid="stMetricValue"]').text or None
        return None

    return until(driver, find, timeout, f"no metric labelled {label!r}")


def screenshot(driver, name: str, full: bool = True) -> Path:
    """Save the page as ``test-output/<name>.png`` at the window's width: ``full`` grows the
    window to the whole page first (then restores it), else what is on screen now."""
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    size = driver.get_window_size()
    if full:
        main = '[data-testid="stMain"]'
        height = driver.execute_script(f"const m = document.querySelector('{main}'); "
                                       "return Math.max(m ? m.scrollHeight : 0, document.body.scrollHeight)") or 1600
        driver.set_window_size(size["width"], max(size["height"], min(int(height), 6000)))
        time.sleep(0.3)
    driver.save_screenshot(str(path))
    if full:
        driver.set_window_size(size["width"], size["height"])
    return path

