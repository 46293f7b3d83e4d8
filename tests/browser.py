"""Headless Chromium for the UI tests: Debian's ``chromium`` and ``chromium-driver``
packages (installed by ``.ci/run``), driven through Selenium.

Selenium is pointed at the Debian chromedriver, so its own driver download (which cannot
work here) is never tried. Without the browser a test is skipped with the reason, except
under CI (``CI=true``), where a missing browser fails it: ``.ci/run`` must install it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.prerequisites import missing

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = "apt-get install chromium chromium-driver"


def find_browser() -> tuple[str, str] | str:
    """``(browser, chromedriver)`` paths, or the reason they cannot be used."""
    browser = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        missing = " and ".join(
            name for name, path in (("chromium", browser), ("chromedriver", driver)) if not path
        )
        return f"no {missing} on PATH ({INSTALL_HINT})"
    return browser, driver


def require_browser() -> tuple[str, str]:
    found = find_browser()
    if isinstance(found, str):
        missing(f"UI test skipped: {found}", f"UI test under CI: {found}; .ci/run must install it")
    return found


@contextmanager
def chromium(screenshots: Path, width: int = 1400, height: int = 1000) -> Iterator[Browser]:
    """A headless Chromium session; screenshots go to ``screenshots``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    screenshots.mkdir(parents=True, exist_ok=True)
    try:
        yield Browser(driver, screenshots)
    finally:
        driver.quit()


class Browser:
    """The driver plus the few waits the UI tests need; every wait is bounded."""

    def __init__(self, driver: object, screenshots: Path) -> None:
        self.driver = driver
        self.screenshots = screenshots

    def open(self, url: str) -> None:
        self.driver.get(url)  # type: ignore[attr-defined]

    def wait_for_text(self, *texts: str, timeout_s: float = 60.0) -> str:
        """The page's visible text once it contains every one of ``texts``."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        def page_text(driver: object) -> str | bool:
            body = driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
            return body if all(t in body for t in texts) else False

        try:
            return WebDriverWait(self.driver, timeout_s, poll_frequency=0.5).until(page_text)
        except Exception as err:
            shot = self.screenshot("timeout")
            body = self.driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
            raise AssertionError(
                f"page {self.driver.current_url} did not show {texts} within "  # type: ignore[attr-defined]
                f"{timeout_s:.0f} s (screenshot {shot}); it shows: {body[:800]!r}"
            ) from err

    def screenshot(self, name: str) -> Path:
        path = self.screenshots / f"{name}.png"
        self.driver.save_screenshot(str(path))  # type: ignore[attr-defined]
        return path
