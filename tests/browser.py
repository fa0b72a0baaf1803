"""The one browser set-up of the tests: Debian's Chromium, headless, and its driver for Selenium.

Where Chromium (or chromedriver, or selenium) is missing, the test says so and skips, unless the
CHROMIUM tier is required (CI), where it fails instead (:func:`requirements.unavailable`).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

from requirements import unavailable

__all__ = ["HEADLESS", "chromium", "driven_chromium"]

HEADLESS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,860")
_INSTALL = "Debian: apt-get install chromium chromium-driver"


def chromium() -> str:
    """The Chromium executable."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    unavailable("CHROMIUM", f"Chromium is not installed ({_INSTALL})")


def _driver() -> str:
    driver = shutil.which("chromedriver")
    missing = [] if driver else ["chromium-driver"]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    if missing or driver is None:
        unavailable("CHROMIUM", f"the browser test needs {', '.join(missing)} ({_INSTALL})")
    return driver


@contextlib.contextmanager
def driven_chromium() -> Iterator[Any]:
    """A headless Chromium under Selenium (a ``selenium.webdriver.Chrome``), quit on exit."""
    browser, driver_path = chromium(), _driver()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in HEADLESS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
