"""The Prefect UI in a real browser (headless Chromium): the session's server serves it,
and a finished ML run's flow-run page lists its task runs, the mapped candidate branches
(`train[c]`, `evaluate[c]`) included. Screenshots go under the test's output folder."""

from __future__ import annotations

from pathlib import Path

import httpx

from benchmarks.tools.prefect.services import ServicesState
from shared_ml.config import load_config
from shared_ml.records import RunRecord
from shared_ml.spec import PIPELINE
from tests.browser import chromium

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_server_serves_the_ui(services: ServicesState) -> None:
    page = httpx.get(services.url, follow_redirects=True, timeout=30)
    assert page.status_code == 200
    assert "<html" in page.text.lower()
    settings = httpx.get(f"{services.url}/ui-settings", timeout=30).json()
    assert settings["api_url"] == services.api_url
    assert settings["auth"] is None  # the local server has no login


def test_flow_run_page_lists_the_task_runs_with_the_mapped_candidates(
    services: ServicesState, cli_run: RunRecord, config_path: Path, tmp_path: Path
) -> None:
    screenshots = tmp_path / "screenshots"
    print(f"screenshots: {screenshots}")
    keys = list(PIPELINE.expand(load_config(config_path).candidate_names))
    flow_run_id = cli_run.tool_details["flow_run_id"]
    with chromium(screenshots) as browser:
        # The page Prefect's own links point at (`prefect.utilities.urls`, our alerts).
        browser.open(f"{services.url}/runs/flow-run/{flow_run_id}")
        browser.wait_for_text(cli_run.run_id, "Completed", timeout_s=120)
        browser.screenshot("flow-run")
        open_tab(browser, "Task Runs")
        text = browser.wait_for_text(*keys, timeout_s=120)
        browser.screenshot("flow-run-task-runs")
    assert all(key in text for key in keys)
    shots = sorted(screenshots.glob("*.png"))
    assert [p.name for p in shots] == ["flow-run-task-runs.png", "flow-run.png"]
    for shot in shots:  # a real image, not an empty file the driver left behind
        content = shot.read_bytes()
        assert content.startswith(PNG_SIGNATURE) and len(content) > len(PNG_SIGNATURE), shot


def open_tab(browser: object, label: str) -> None:
    """Click the tab called ``label`` (an item of the page's ``tablist``) once the SPA has
    rendered it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def shown_tab(driver: object) -> object:
        tabs = driver.find_elements(By.CSS_SELECTOR, "[role=tablist] > *")  # type: ignore[attr-defined]
        return next((t for t in tabs if t.is_displayed() and t.text.strip() == label), False)

    driver = browser.driver  # type: ignore[attr-defined]
    WebDriverWait(driver, 60, poll_frequency=0.5).until(shown_tab).click()
