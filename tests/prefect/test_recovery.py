"""Retries, non-retryable failures (in every branch of `train`), the failure webhook,
resume from the cache, and a flow-run process killed with SIGKILL under the worker: all
against the real server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from benchmarks.tools.prefect.adapter import PrefectAdapter
from benchmarks.tools.prefect.client import PrefectClient
from shared_ml.config import load_config
from shared_ml.records import RunRecord
from shared_ml.spec import PIPELINE, parse_task_key
from tests.webhook import WebhookReceiver

UPSTREAM_OF_TRAIN = {"ingest", "validate", "preprocess"}
FAULTY_RUN_DATE = date(2026, 1, 5)


@pytest.fixture(scope="module")
def candidates(config_path: Path) -> tuple[str, ...]:
    return load_config(config_path).candidate_names


@pytest.fixture(scope="module")
def train_and_downstream(candidates: tuple[str, ...]) -> set[str]:
    """Task keys: every branch of train and evaluate, then select, register, score."""
    return set(PIPELINE.expand(candidates)) - UPSTREAM_OF_TRAIN


@pytest.fixture(scope="module")
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        os.environ["ORCHBENCH_WEBHOOK_URL"] = receiver.url
        try:
            yield receiver
        finally:
            os.environ.pop("ORCHBENCH_WEBHOOK_URL", None)


@pytest.fixture(scope="module")
def faulty_run(adapter: PrefectAdapter, config_path: Path, webhook: WebhookReceiver) -> RunRecord:
    """validate fails once (transient), train fails for good (non-retryable); a dated
    in-process run (the date goes in as the flow's `logical_date` parameter)."""
    return adapter.run_pipeline(
        config_path,
        run_id="prefect-faulty",
        faults={"validate": {"transient_attempts": 1}, "train": {"non_retryable": True}},
        logical_date=FAULTY_RUN_DATE,
    )


@pytest.fixture(scope="module")
def fixed_rerun(adapter: PrefectAdapter, config_path: Path, faulty_run: RunRecord) -> RunRecord:
    return adapter.resume_pipeline(faulty_run, config_path)


def _task_runs(record: RunRecord) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in record.tool_details["task_runs"]}


def test_transient_fault_is_retried_and_succeeds(faulty_run: RunRecord) -> None:
    validate = _task_runs(faulty_run)["validate"]
    assert validate["state"] == "Completed"
    assert validate["run_count"] == 2
    attempts = faulty_run.attempts("validate")
    assert [(a.attempt, a.outcome) for a in attempts] == [(1, "failed"), (2, "success")]
    assert attempts[0].error is not None and attempts[0].error.retryable


def test_non_retryable_fault_is_not_retried(
    faulty_run: RunRecord, candidates: tuple[str, ...]
) -> None:
    assert faulty_run.status == "failed"
    assert faulty_run.tool_details["flow_run_state"]["type"] == "FAILED"
    task_runs = _task_runs(faulty_run)
    for candidate in candidates:  # the fault applies to each branch separately
        train = task_runs[f"train[{candidate}]"]
        assert train["state"] == "Failed"
        assert train["run_count"] == 1  # retries=2 in the spec, yet no retry
        [attempt] = faulty_run.attempts("train", candidate)
        assert attempt.outcome == "failed" and attempt.error and not attempt.error.retryable
    for step in ("evaluate", "select", "register", "score"):
        assert not faulty_run.attempts(step), step


def test_webhook_receives_the_failure_notification(
    faulty_run: RunRecord, webhook: WebhookReceiver
) -> None:
    [payload] = webhook.payloads
    assert payload["orchbench"]["tool"] == "prefect"
    assert payload["orchbench"]["run_id"] == faulty_run.run_id
    step = payload["orchbench"]["step"]  # the failed task: one of the train branches
    assert parse_task_key(step)[0] == "train"
    assert "InjectedNonRetryableError" in payload["orchbench"]["error"]
    assert f"failed in step `{step}`" in payload["text"]
    assert payload["blocks"][0]["type"] == "section"


def test_fixed_rerun_executes_only_the_failed_step_and_its_downstream(
    faulty_run: RunRecord,
    fixed_rerun: RunRecord,
    webhook: WebhookReceiver,
    candidates: tuple[str, ...],
    train_and_downstream: set[str],
) -> None:
    assert fixed_rerun.status == "success"
    assert fixed_rerun.run_id == faulty_run.run_id
    assert fixed_rerun.logical_date == faulty_run.logical_date == FAULTY_RUN_DATE
    assert set(fixed_rerun.tool_details["cached_steps"]) == UPSTREAM_OF_TRAIN
    assert set(fixed_rerun.tool_details["executed_steps"]) == train_and_downstream
    # The step records agree: upstream steps ran in the first flow run only.
    assert len(fixed_rerun.attempts("ingest")) == 1
    assert len(fixed_rerun.attempts("validate")) == 2  # the transient failure + success
    for candidate in candidates:
        outcomes = [a.outcome for a in fixed_rerun.attempts("train", candidate)]
        assert outcomes == ["failed", "success"], candidate
    assert fixed_rerun.prediction_hash is not None
    assert len(webhook.payloads) == 1  # the successful re-run sent nothing


@pytest.fixture(scope="module")
def killed_run(deployment_adapter: PrefectAdapter, config_path: Path) -> RunRecord:
    """A deployment run whose flow-run process (a child of the worker) SIGKILLs itself
    in the middle of `train`."""
    return deployment_adapter.run_pipeline(
        config_path,
        run_id="prefect-killed",
        faults={"train": {"kill_attempts": 1, "kill_after_s": 0.3}},
    )


def test_sigkilled_flow_run_process_leaves_the_run_crashed(killed_run: RunRecord) -> None:
    state = killed_run.tool_details["flow_run_state"]
    # Observed with Prefect 3.9.1: the process worker sees exit code -9 and marks the
    # flow run CRASHED; the task run of `train` stays RUNNING (nobody reports its end).
    assert state["type"] == "CRASHED", state
    assert "-9" in (state["message"] or "")
    assert killed_run.status == "failed"
    # Every branch that had started its first attempt died with the process.
    train = killed_run.attempts("train")
    assert train and {a.outcome for a in train} == {"lost"} and {a.attempt for a in train} == {1}
    assert {s.step for s in killed_run.steps if s.outcome == "success"} == UPSTREAM_OF_TRAIN


def test_rerun_after_the_kill_resumes_from_the_cache_through_the_deployment(
    deployment_adapter: PrefectAdapter,
    client: PrefectClient,
    config_path: Path,
    killed_run: RunRecord,
    candidates: tuple[str, ...],
    train_and_downstream: set[str],
) -> None:
    resumed = deployment_adapter.resume_pipeline(killed_run, config_path)
    assert resumed.status == "success"
    assert set(resumed.tool_details["cached_steps"]) == UPSTREAM_OF_TRAIN
    assert set(resumed.tool_details["executed_steps"]) == train_and_downstream
    assert all(len(resumed.attempts(step)) == 1 for step in UPSTREAM_OF_TRAIN)
    lost = {a.branch for a in killed_run.attempts("train")}
    for candidate in candidates:
        outcomes = [a.outcome for a in resumed.attempts("train", candidate)]
        assert outcomes == (["lost", "success"] if candidate in lost else ["success"])
    # Created through the API, picked up by the process worker, completed.
    flow_run = client.read_flow_run(resumed.tool_details["flow_run_id"])
    assert flow_run["deployment_id"] is not None
    assert flow_run["work_pool_name"] == "orchbench-process"
    assert flow_run["state"]["type"] == "COMPLETED"
