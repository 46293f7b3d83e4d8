"""The ML DAG run by the real scheduler, driven over the REST API.

Runs are expensive here (each task is its own process), so each module fixture makes one
run and several tests read it:

- ``recovered``: a transient fault in ``ingest`` and a SIGKILLed worker in ``validate``,
  run through ``AirflowAdapter.run_pipeline`` (what ``orchbench run --tool airflow`` does);
- ``hard_failure``: a non-retryable fault in ``ingest``, with the webhook notifier armed;
- ``resumed``: ``train`` fails after all its retries, then its failed task is cleared.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from benchmarks.tools.airflow.adapter import AirflowAdapter
from benchmarks.tools.airflow.client import AirflowClient, TaskTry
from shared_ml.records import RunRecord
from shared_ml.runner import run_pipeline
from shared_ml.spec import PIPELINE
from tests.airflow.conftest import (
    DEFAULT_CONFIG,
    ML_DAG,
    AirflowTestInstance,
    run_ml,
)
from tests.webhook import WebhookReceiver

pytestmark = pytest.mark.slow


def _run_id(kind: str) -> str:
    return f"test-{kind}-{uuid.uuid4().hex[:8]}"


def _latest(tries: list[TaskTry]) -> dict[str, TaskTry]:
    latest: dict[str, TaskTry] = {}
    for t in tries:
        if t.task_id not in latest or t.try_number > latest[t.task_id].try_number:
            latest[t.task_id] = t
    return latest


@pytest.fixture(scope="module")
def baseline(airflow: AirflowTestInstance) -> RunRecord:
    """The plain-Python pipeline, in this process, same config and seed."""
    return run_pipeline(airflow.config(DEFAULT_CONFIG), run_id=_run_id("baseline"))


@pytest.fixture(scope="module")
def recovered(airflow: AirflowTestInstance) -> RunRecord:
    adapter = AirflowAdapter(settings=airflow.services.settings)
    return adapter.run_pipeline(
        DEFAULT_CONFIG,
        run_id=_run_id("recovered"),
        faults={
            "ingest": {"transient_attempts": 1},
            "validate": {"kill_attempts": 1, "kill_after_s": 0.2},
        },
    )


def test_adapter_run_matches_the_plain_python_baseline(
    recovered: RunRecord, baseline: RunRecord
) -> None:
    assert recovered.status == "success", recovered.tool_details
    assert recovered.tool == "airflow"
    assert recovered.config_fingerprint == baseline.config_fingerprint
    assert recovered.metrics and recovered.metrics == baseline.metrics
    assert recovered.prediction_hash and recovered.prediction_hash == baseline.prediction_hash
    succeeded = {s.step for s in recovered.steps if s.outcome == "success"}
    assert succeeded == set(PIPELINE.step_names)


def test_adapter_records_airflow_task_timings(recovered: RunRecord) -> None:
    tasks = recovered.tool_details["tasks"]
    assert {t["task_id"] for t in tasks} == set(PIPELINE.step_names)
    for t in tasks:
        if t["state"] == "success":
            assert t["queued_at"] and t["started_at"] and t["ended_at"], t
    assert recovered.tool_details["trigger_to_end_s"] > 0


def test_transient_fault_is_retried_and_try_2_succeeds(
    recovered: RunRecord, client: AirflowClient
) -> None:
    tries = client.task_tries(ML_DAG, recovered.run_id, "ingest")
    assert [t.try_number for t in tries] == [1, 2]
    assert tries[-1].state == "success"
    assert tries[0].state != "success"
    first, second = recovered.attempts("ingest")
    assert first.outcome == "failed" and first.error and first.error.retryable
    assert "InjectedTransientError" in first.error.type
    assert second.outcome == "success" and second.attempt == 2


def test_sigkilled_task_is_detected_and_retried(
    recovered: RunRecord, client: AirflowClient
) -> None:
    tries = client.task_tries(ML_DAG, recovered.run_id, "validate")
    assert [t.try_number for t in tries] == [1, 2]
    assert tries[0].state != "success" and tries[-1].state == "success"
    killed, retried = recovered.attempts("validate")
    # The killed attempt never wrote its end: the record still said "running".
    assert killed.outcome == "lost" and killed.ended_at is None
    assert retried.outcome == "success" and retried.pid != killed.pid


# --- a non-retryable failure, and the notification it sends --------------------------


@dataclass
class HardFailure:
    run: dict[str, Any]
    run_id: str
    webhook: WebhookReceiver


@pytest.fixture(scope="module")
def hard_failure(airflow: AirflowTestInstance) -> Any:
    with WebhookReceiver() as webhook:
        airflow.client.set_variable("orchbench_webhook_url", webhook.url)
        try:
            run_id = _run_id("nonretryable")
            run = run_ml(airflow, run_id, faults={"ingest": {"non_retryable": True}})
            # The notifier runs in the task process after the failure; give it a moment.
            webhook.wait_for(1, timeout=90)
            yield HardFailure(run, run_id, webhook)
        finally:
            airflow.client.delete_variable("orchbench_webhook_url")


def test_non_retryable_fault_fails_without_retry(
    hard_failure: HardFailure, client: AirflowClient, airflow: AirflowTestInstance
) -> None:
    assert hard_failure.run["state"] == "failed"
    ingest = _latest(client.run_tries(ML_DAG, hard_failure.run_id))["ingest"]
    assert ingest.state == "failed"
    assert ingest.try_number == 1  # PIPELINE gives ingest 3 retries; none was used
    assert [t.try_number for t in client.task_tries(ML_DAG, hard_failure.run_id, "ingest")] == [1]
    (attempt,) = airflow.step_records(hard_failure.run_id)
    assert attempt.error and not attempt.error.retryable
    states = {
        ti["task_id"]: ti["state"] for ti in client.task_instances(ML_DAG, hard_failure.run_id)
    }
    assert all(states[s] == "upstream_failed" for s in PIPELINE.step_names if s != "ingest")


def test_failure_notification_reaches_the_webhook(hard_failure: HardFailure) -> None:
    assert hard_failure.webhook.requests, "the webhook received nothing within 90 s"
    (request,) = hard_failure.webhook.requests
    assert request["path"] == "/hooks/orchbench"
    assert request["content_type"] == "application/json"
    payload = request["json"]
    assert "failed" in payload["text"] and payload["blocks"]  # Slack-compatible
    details = payload["orchbench"]
    assert details["tool"] == "airflow"
    assert details["pipeline"] == ML_DAG
    assert details["run_id"] == hard_failure.run_id
    assert details["step"] == "ingest"
    assert "injected non-retryable failure" in details["error"]


# --- clearing a failed task resumes the run ------------------------------------------


@pytest.fixture(scope="module")
def resumed(airflow: AirflowTestInstance) -> dict[str, Any]:
    """Through the adapter: a run that fails in `train`, then `resume_pipeline`."""
    adapter = AirflowAdapter(settings=airflow.services.settings)
    client = airflow.client
    policy = PIPELINE.step("train").retry
    # Fail every try Airflow makes (1 + retries), so the run fails in `train`.
    failed = adapter.run_pipeline(
        DEFAULT_CONFIG,
        run_id=_run_id("resume"),
        faults={"train": {"transient_attempts": policy.max_retries + 1}},
    )
    run_id = failed.run_id
    before = _latest(client.run_tries(ML_DAG, run_id))
    resumed = adapter.resume_pipeline(failed, DEFAULT_CONFIG)
    return {
        "run_id": run_id,
        "failed": failed,
        "before": before,
        "resumed": resumed,
        "after_tries": _latest(client.run_tries(ML_DAG, run_id)),
    }


def test_train_fails_after_its_retries(resumed: dict[str, Any]) -> None:
    assert resumed["failed"].status == "failed"
    train = resumed["before"]["train"]
    assert train.state == "failed"
    assert train.try_number == PIPELINE.step("train").retry.max_retries + 1


def test_clearing_the_failed_task_resumes_without_rerunning_upstream(
    resumed: dict[str, Any],
) -> None:
    record: RunRecord = resumed["resumed"]
    assert record.tool_details["cleared_tasks"] == ["evaluate", "register", "train"]
    assert record.status == "success"
    assert record.run_id == resumed["run_id"]
    for step in ("ingest", "validate", "preprocess"):
        assert resumed["after_tries"][step].try_number == 1, step
        assert resumed["after_tries"][step].started_at == resumed["before"][step].started_at
        assert [a.outcome for a in record.attempts(step)] == ["success"], step
    retries = PIPELINE.step("train").retry.max_retries
    train = record.attempts("train")
    assert [a.outcome for a in train] == ["failed"] * (retries + 1) + ["success"]
    for step in ("evaluate", "register"):
        assert [a.outcome for a in record.attempts(step)] == ["success"], step
    assert record.prediction_hash and record.registry
