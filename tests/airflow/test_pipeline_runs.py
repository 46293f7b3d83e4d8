"""The ML DAG run by the real scheduler, driven over the REST API.

Runs are expensive here (each task is its own process), so each module fixture makes one
run and several tests read it:

- ``recovered``: a transient fault in ``ingest`` and a SIGKILLed worker in ``validate``,
  run through ``AirflowAdapter.run_pipeline`` for a fixed logical date (what ``orchbench
  run --tool airflow --date D`` does); it also shows the candidate branches running at
  once and the run's task instances equal to the spec's expanded graph;
- ``hard_failure``: a non-retryable fault in ``ingest``, with the webhook notifier armed;
- ``resumed``: ``train`` fails after all its retries (in every branch), then the failed
  task instances are cleared.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from benchmarks.tools.airflow.adapter import AirflowAdapter
from benchmarks.tools.airflow.client import AirflowClient, TaskTry, parse_time
from shared_ml.config import load_config
from shared_ml.records import RunRecord
from shared_ml.runner import run_pipeline
from shared_ml.spec import PIPELINE, parse_task_key
from tests.airflow.conftest import (
    DEFAULT_CONFIG,
    ML_DAG,
    AirflowTestInstance,
    run_ml,
)
from tests.moments import assert_moments_in_order
from tests.webhook import WebhookReceiver

pytestmark = pytest.mark.slow

RUN_DATE = date(2026, 1, 3)


def _run_id(kind: str) -> str:
    return f"test-{kind}-{uuid.uuid4().hex[:8]}"


def _latest(tries: list[TaskTry]) -> dict[str, TaskTry]:
    """The latest try of each task instance, by task key (``train[logreg]``)."""
    latest: dict[str, TaskTry] = {}
    for t in tries:
        if t.key not in latest or t.try_number > latest[t.key].try_number:
            latest[t.key] = t
    return latest


@pytest.fixture(scope="module")
def baseline(airflow: AirflowTestInstance) -> RunRecord:
    """The plain-Python pipeline, in this process, same config, seed and date."""
    return run_pipeline(
        airflow.config(DEFAULT_CONFIG), run_id=_run_id("baseline"), logical_date=RUN_DATE
    )


@pytest.fixture(scope="module")
def recovered(airflow: AirflowTestInstance) -> RunRecord:
    adapter = AirflowAdapter(settings=airflow.services.settings)
    return adapter.run_pipeline(
        DEFAULT_CONFIG,
        run_id=_run_id("recovered"),
        faults={
            "ingest": {"transient_attempts": 1},
            "validate": {"kill_attempts": 1, "kill_after_s": 0.2},
            # Branches meet before training, so their overlap does not hang on how fast
            # a branch's work ends (a 0.3 s fit ended before the last branch started).
            "train": {"barrier": len(load_config(DEFAULT_CONFIG).candidate_names)},
        },
        logical_date=RUN_DATE,
    )


def test_adapter_run_matches_the_plain_python_baseline(
    recovered: RunRecord, baseline: RunRecord
) -> None:
    assert recovered.status == "success", recovered.tool_details
    assert recovered.tool == "airflow"
    assert recovered.config_fingerprint == baseline.config_fingerprint
    assert recovered.selected_candidate and (
        recovered.selected_candidate == baseline.selected_candidate
    )
    assert recovered.metrics and recovered.metrics == baseline.metrics
    assert recovered.prediction_hash and recovered.prediction_hash == baseline.prediction_hash
    assert recovered.candidates == baseline.candidates  # the ranking table
    succeeded = {s.key for s in recovered.steps if s.outcome == "success"}
    assert succeeded == set(PIPELINE.expand(airflow_candidates(baseline)))


def airflow_candidates(record: RunRecord) -> tuple[str, ...]:
    """The candidate list preprocess produced (what the branches were expanded over)."""
    (preprocess,) = [s for s in record.steps if s.step == "preprocess" and s.outcome == "success"]
    return tuple(preprocess.metadata["candidates"])


def test_the_runs_task_moments_are_present_and_ordered(
    airflow: AirflowTestInstance, recovered: RunRecord
) -> None:
    """queued_when -> work start -> work end -> end_date for every try that ran (the
    transient ingest try too), within the dag run's queued_at -> end_date."""
    adapter = AirflowAdapter(settings=airflow.services.settings)
    assert_moments_in_order(adapter.task_timings(recovered.run_id), recovered)


def test_the_run_has_the_date_it_was_given(recovered: RunRecord, baseline: RunRecord) -> None:
    """`--date D`: Airflow's run has logical date D and the day as its data interval; the
    record carries them, and ingest ran for that date."""
    details = recovered.tool_details
    start = datetime(2026, 1, 3, tzinfo=UTC)
    assert parse_time(details["logical_date"]) == start
    assert [parse_time(t) for t in details["data_interval"]] == [start, start + timedelta(days=1)]
    assert recovered.logical_date == RUN_DATE == baseline.logical_date
    assert recovered.data_interval == baseline.data_interval
    (ingest,) = [s for s in recovered.steps if s.step == "ingest" and s.outcome == "success"]
    assert ingest.metadata["logical_date"] == RUN_DATE.isoformat()


def test_a_second_run_for_the_same_date_is_refused_clearly(
    recovered: RunRecord, airflow: AirflowTestInstance
) -> None:
    """Airflow keeps one run per logical date: the adapter says so before triggering."""
    adapter = AirflowAdapter(settings=airflow.services.settings)
    with pytest.raises(ValueError, match="one run per logical date") as refused:
        adapter.run_pipeline(DEFAULT_CONFIG, logical_date=RUN_DATE)
    assert recovered.run_id in str(refused.value) and "orchbench backfill" in str(refused.value)


def test_adapter_records_airflow_task_timings(recovered: RunRecord) -> None:
    tasks = recovered.tool_details["tasks"]
    assert {t["key"] for t in tasks} == set(PIPELINE.expand(airflow_candidates(recovered)))
    for t in tasks:
        if t["state"] == "success":
            assert t["queued_at"] and t["started_at"] and t["ended_at"], t
    assert recovered.tool_details["trigger_to_end_s"] > 0


def test_run_graph_equals_the_expanded_spec(recovered: RunRecord, client: AirflowClient) -> None:
    """Airflow's task instances of the run (mapped ones by map index, labelled with their
    candidate) are exactly the spec's expanded task graph, and each one started only after
    every upstream task of that graph had ended."""
    candidates = client.request(
        "GET",
        f"/dags/{ML_DAG}/dagRuns/{recovered.run_id}/taskInstances/preprocess"
        "/xcomEntries/return_value",
    )["value"]
    assert tuple(candidates) == airflow_candidates(recovered)
    latest = _latest(client.run_tries(ML_DAG, recovered.run_id))
    graph = PIPELINE.expand(candidates)
    assert set(latest) == set(graph)
    for key, task in latest.items():
        _, branch = parse_task_key(key)
        if branch is not None:
            assert task.map_index == candidates.index(branch), key  # expanded in config order
        for upstream in graph[key]:
            assert latest[upstream].ended_at <= task.started_at, (upstream, key)


def test_candidate_branches_overlap_in_time(
    recovered: RunRecord, client: AirflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """One run's branches (train[c] start -> evaluate[c] end, Airflow's own task instance
    timestamps) run at once: every branch starts before any branch ends."""
    latest = _latest(client.run_tries(ML_DAG, recovered.run_id))
    branches = {
        c: (latest[f"train[{c}]"].started_at, latest[f"evaluate[{c}]"].ended_at)
        for c in airflow_candidates(recovered)
    }
    with capsys.disabled():
        for c, (start, end) in branches.items():
            print(f"\nbranch {c}: {start.isoformat()} -> {end.isoformat()}")
    assert len(branches) >= 3
    assert max(start for start, _ in branches.values()) < min(end for _, end in branches.values())
    # The run record keeps one record per branch step, with the same overlap.
    for c in branches:
        assert [a.outcome for a in recovered.attempts("train", branch=c)] == ["success"]
    trains = [recovered.attempts("train", branch=c)[0] for c in branches]
    assert max(t.started_at for t in trains) < min(t.ended_at for t in trains)  # type: ignore[type-var]


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


def test_train_fails_after_its_retries_in_every_branch(resumed: dict[str, Any]) -> None:
    """A fault on `train` hits each candidate's branch: every mapped instance fails."""
    assert resumed["failed"].status == "failed"
    candidates = airflow_candidates(resumed["failed"])
    for c in candidates:
        train = resumed["before"][f"train[{c}]"]
        assert train.state == "failed", c
        assert train.try_number == PIPELINE.step("train").retry.max_retries + 1


def test_clearing_the_failed_task_resumes_without_rerunning_upstream(
    resumed: dict[str, Any],
) -> None:
    record: RunRecord = resumed["resumed"]
    assert record.tool_details["cleared_tasks"] == [
        "evaluate",
        "register",
        "score",
        "select",
        "train",
    ]
    assert record.status == "success"
    assert record.run_id == resumed["run_id"]
    for step in ("ingest", "validate", "preprocess"):
        assert resumed["after_tries"][step].try_number == 1, step
        assert resumed["after_tries"][step].started_at == resumed["before"][step].started_at
        assert [a.outcome for a in record.attempts(step)] == ["success"], step
    retries = PIPELINE.step("train").retry.max_retries
    for c in airflow_candidates(record):
        train = record.attempts("train", branch=c)
        assert [a.outcome for a in train] == ["failed"] * (retries + 1) + ["success"], c
        assert [a.outcome for a in record.attempts("evaluate", branch=c)] == ["success"], c
    for step in ("select", "register", "score"):
        assert [a.outcome for a in record.attempts(step)] == ["success"], step
    assert record.prediction_hash and record.registry and record.scoring
