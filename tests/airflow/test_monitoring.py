"""Seeing inside one run (issue 13), through Airflow's own stores and the orchbench CLI.

Every test reads the session's ``observed_run`` (conftest): ``train`` fails once in each
candidate branch and is retried, ``register`` succeeds, ``score`` fails without retry.

- shared_ml's log lines are in Airflow's task logs, and ``orchbench logs`` reads them
  through the REST API's task-log endpoint: the failed attempts show the injected errors;
- ``orchbench show`` has each step's attempts, durations and peak memory;
- the registered model is an Airflow asset whose event carries the metrics, read back
  through the REST API, and that event starts the downstream report DAG;
- the failure e-mail goes out through the SMTP provider's notifier.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from benchmarks.cli import app
from benchmarks.tools.airflow.adapter import AirflowAdapter
from pipelines.airflow.metadata import MODEL_ASSET_NAME, REPORT_DAG_ID
from shared_ml.records import RunRecord
from tests.airflow.conftest import (
    ALERT_EMAIL_TO,
    DEFAULT_CONFIG,
    ML_DAG,
    AirflowTestInstance,
)

Orchbench = Callable[..., Result]

pytestmark = pytest.mark.slow


@pytest.fixture
def orchbench(airflow: AirflowTestInstance, monkeypatch: pytest.MonkeyPatch):
    """The orchbench CLI (in this process: a fresh interpreter costs seconds per call
    here), pointed at the session's install, as ``orchbench airflow up --home`` leaves it
    (``$ORCHBENCH_AIRFLOW_HOME``), and its store (``$ORCHBENCH_HOME``, set by conftest)."""
    monkeypatch.delenv("ORCHBENCH_AIRFLOW_URL", raising=False)

    def invoke(*args: str, airflow_home: Path | None = None) -> Result:
        monkeypatch.setenv("ORCHBENCH_AIRFLOW_HOME", str(airflow_home or airflow.home))
        return CliRunner().invoke(app, [*args, "--config", str(DEFAULT_CONFIG)])

    return invoke


def test_failed_attempts_show_their_injected_errors_through_orchbench_logs(
    orchbench: Orchbench, observed_run: RunRecord
) -> None:
    run_id = observed_run.run_id
    assert observed_run.status == "failed"
    train = orchbench(
        "logs", "--tool", "airflow", run_id, "--step", "train[forest]", "--attempt", "1"
    )
    assert train.exit_code == 0, train.stderr
    text = train.stdout
    print(text)
    assert "=== train[forest] attempt 1 ===" in text
    # Airflow's own log of try 1 of the mapped instance labelled "forest"...
    assert "dag_id=orchbench_ml" in text and "attempt=1.log" in text
    # ...holding shared_ml's lines, with run, step and attempt in each...
    assert f"[{run_id} train[forest] attempt 1] train[forest] started" in text
    # ...and the injected error, in shared_ml's line and in Airflow's own traceback.
    assert "injected transient failure in step 'train'" in text
    assert "InjectedTransientError" in text

    score = orchbench("logs", "--tool", "airflow", run_id, "--step", "score")
    assert score.exit_code == 0, score.stderr
    assert "=== score attempt 1 ===" in score.stdout
    assert "injected non-retryable failure in step 'score'" in score.stdout


def test_the_retry_log_has_shared_mls_start_and_end_lines(
    airflow: AirflowTestInstance, observed_run: RunRecord
) -> None:
    """Point 1: the task process sends the ``shared_ml`` logger's records to Airflow's
    task log (no handler of orchbench's own in between)."""
    adapter = AirflowAdapter(settings=airflow.services.settings)
    text = adapter.step_log(DEFAULT_CONFIG, observed_run, "train[hgb]", 2)
    prefix = f"[{observed_run.run_id} train[hgb] attempt 2]"
    assert f"{prefix} train[hgb] started" in text
    assert f"{prefix} train[hgb] succeeded in" in text and "peak RSS" in text
    assert "shared_ml.execution" in text  # the stdlib logger's name, kept by Airflow
    assert "injected" not in text


def test_orchbench_logs_says_where_the_services_are_missing(
    orchbench: Orchbench, observed_run: RunRecord, tmp_path: Path
) -> None:
    done = orchbench("logs", "--tool", "airflow", observed_run.run_id, airflow_home=tmp_path)
    assert done.exit_code == 1
    assert "not running" in done.stderr and "orchbench airflow up" in done.stderr
    bad = orchbench("logs", "--tool", "airflow", observed_run.run_id, "--step", "nope")
    assert bad.exit_code == 2 and "--step 'nope'" in bad.stderr


def test_show_has_attempts_durations_and_peak_memory_per_step(
    orchbench: Orchbench, observed_run: RunRecord
) -> None:
    done = orchbench("show", observed_run.run_id, "--json")
    assert done.exit_code == 0, done.stderr
    record = RunRecord.model_validate_json(done.stdout)
    candidates = [c["candidate"] for c in record.candidates]
    assert sorted(candidates) == ["forest", "hgb", "logreg"]
    for c in candidates:
        first, second = record.attempts("train", branch=c)
        assert (first.attempt, first.outcome) == (1, "failed"), c
        assert (
            first.error and first.error.retryable and "InjectedTransientError" in first.error.type
        )
        assert (second.attempt, second.outcome) == (2, "success"), c
    (score,) = record.attempts("score")
    assert score.outcome == "failed" and score.error and not score.error.retryable
    for attempt in record.steps:
        assert attempt.duration_s is not None and attempt.duration_s > 0, attempt.key
        if attempt.outcome == "success":
            assert attempt.peak_rss_mb is not None and attempt.peak_rss_mb > 0, attempt.key
    # Airflow's own view agrees: two tries of each train instance.
    tries = [t for t in record.tool_details["tasks"] if t["task_id"] == "train"]
    assert sorted((t["key"], t["try_number"]) for t in tries) == sorted(
        (f"train[{c}]", n) for c in candidates for n in (1, 2)
    )
    table = orchbench("show", observed_run.run_id)
    assert table.exit_code == 0 and "peak RSS MB" in table.stdout


def _event_of(airflow: AirflowTestInstance, run_id: str) -> dict[str, Any]:
    events = airflow.client.asset_events(source_dag_id=ML_DAG, source_run_id=run_id)
    assert len(events) == 1, events
    return events[0]


def test_registered_model_is_an_asset_event_with_the_metrics(
    airflow: AirflowTestInstance, observed_run: RunRecord
) -> None:
    event = _event_of(airflow, observed_run.run_id)
    assert event["name"] == MODEL_ASSET_NAME and event["source_task_id"] == "register"
    extra = event["extra"]
    assert extra["run_id"] == observed_run.run_id
    assert extra["selected_candidate"] == observed_run.selected_candidate
    assert extra["metrics"] == observed_run.metrics
    assert extra["candidates"] == observed_run.candidates
    assert extra["prediction_hash"] == observed_run.prediction_hash
    registry = observed_run.registry
    assert extra["version"] == registry["version"] and extra["promoted"] == registry["promoted"]
    index = airflow.registry_index()
    (version,) = [v for v in index["versions"] if v["version"] == extra["version"]]
    assert extra["model_uri"] == version["model_uri"]
    assert extra["model_digest"] == version["model_digest"]
    assert extra["registry"] == airflow.config().name


def test_the_model_event_starts_the_report_dag(
    airflow: AirflowTestInstance, observed_run: RunRecord
) -> None:
    client = airflow.client

    def report_run() -> dict[str, Any] | None:
        runs = _event_of(airflow, observed_run.run_id)["created_dagruns"]
        return next((r for r in runs if r["dag_id"] == REPORT_DAG_ID), None)

    run = client.wait_until(report_run, 180, f"a run of {REPORT_DAG_ID} from the model event")
    done = client.wait_for_run(REPORT_DAG_ID, run["run_id"], timeout_s=300)
    assert done["state"] == "success" and done["run_type"] == "asset_triggered"
    lines = client.request(
        "GET",
        f"/dags/{REPORT_DAG_ID}/dagRuns/{run['run_id']}/taskInstances/report"
        "/xcomEntries/return_value",
    )["value"]
    version = observed_run.registry["version"]
    assert any(f"v{version} ({observed_run.selected_candidate})" in line for line in lines)
    assert any(observed_run.run_id in line for line in lines)


def test_the_failure_is_e_mailed_through_the_smtp_notifier(
    airflow: AirflowTestInstance, observed_run: RunRecord
) -> None:
    run_id = observed_run.run_id

    def mails() -> list:
        return [m for m in airflow.smtp.messages if run_id in str(m["Subject"])]

    (mail,) = airflow.client.wait_until(mails, 120, f"the failure e-mail of run {run_id}")
    assert str(mail["To"]) == ALERT_EMAIL_TO
    assert str(mail["From"]) == "orchbench@localhost"  # the connection's from_email
    assert "failed in step `score`" in str(mail["Subject"])
    body = html.unescape(mail.get_body(("html", "plain")).get_content())
    assert "injected non-retryable failure in step 'score'" in body
    assert ML_DAG in body and run_id in body
    # train's failed tries were retried: no e-mail for them, only for the final failure.
    assert len(mails()) == 1
