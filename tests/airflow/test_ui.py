"""The Airflow UI in a real browser (headless Debian chromium, ``tests/browser.py``).

Log in through the simple auth manager's login page with the user and password that
``orchbench airflow up`` prints, open the ML DAG's latest run from the DAG's runs list,
and find its tasks, the mapped candidate branches by their names. Airflow 3's UI is a
React app: every check waits for text to appear, never for a page load. Screenshots are
kept under the test's ``tmp_path / "screenshots"`` (the path is printed).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.tools.airflow.services import ADMIN_USER, admin_password
from shared_ml.records import RunRecord
from tests.airflow.conftest import ML_DAG, AirflowTestInstance
from tests.browser import Browser, chromium

pytestmark = pytest.mark.slow


def _log_in(browser: Browser, user: str, password: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser.driver
    driver.find_element(By.CSS_SELECTOR, "input:not([type=password])").send_keys(user)  # type: ignore[attr-defined]
    driver.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(password)  # type: ignore[attr-defined]
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # type: ignore[attr-defined]
    # The page stores the token as a cookie, then leaves for the app: wait for that.
    WebDriverWait(driver, 60, poll_frequency=0.5).until(
        lambda d: "/auth/login" not in d.current_url,
        message="still on the login page 60 s after signing in",
    )


def _latest_run_with_branches(airflow: AirflowTestInstance, observed: RunRecord) -> str:
    """The ML DAG's latest run that got as far as its candidate branches (the session's
    other tests make runs too, and one of them fails before the branches); at least the
    observed run has them."""
    runs = airflow.client.request(
        "GET", f"/dags/{ML_DAG}/dagRuns", params={"order_by": "-run_after", "limit": 20}
    )["dag_runs"]
    for run in runs:
        tasks = airflow.client.task_instances(ML_DAG, run["dag_run_id"])
        if any(t["task_id"] == "train" and t["map_index"] >= 0 for t in tasks):
            return run["dag_run_id"]
    return observed.tool_details["dag_run_id"]


def test_log_in_and_find_the_runs_tasks_and_mapped_candidates(
    airflow: AirflowTestInstance, observed_run: RunRecord, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    print(f"\nUI screenshots: {shots}")
    url = airflow.services.settings.url
    candidates = airflow.config().candidate_names
    run_id = _latest_run_with_branches(airflow, observed_run)
    with chromium(shots) as browser:
        browser.open(f"{url}/")  # not logged in: the login page
        browser.wait_for_text("Sign into Airflow")
        browser.screenshot("01-login")
        _log_in(browser, ADMIN_USER, admin_password(airflow.home))

        browser.open(f"{url}/dags/{ML_DAG}/runs")
        browser.wait_for_text(ML_DAG, run_id, timeout_s=90)
        browser.screenshot("02-dag-runs")

        browser.open(f"{url}/dags/{ML_DAG}/runs/{run_id}")
        steps = ("ingest", "validate", "preprocess", "train", "evaluate", "select", "register")
        browser.wait_for_text(run_id, *steps, "score", timeout_s=90)
        browser.screenshot("03-run")

        for task in ("train", "evaluate"):  # the mapped branches, labelled by candidate
            browser.open(f"{url}/dags/{ML_DAG}/runs/{run_id}/tasks/{task}/mapped")
            browser.wait_for_text(task, *candidates, timeout_s=90)
            browser.screenshot(f"04-{task}-mapped")
    assert sorted(p.name for p in shots.glob("*.png")) == [
        "01-login.png",
        "02-dag-runs.png",
        "03-run.png",
        "04-evaluate-mapped.png",
        "04-train-mapped.png",
    ]
