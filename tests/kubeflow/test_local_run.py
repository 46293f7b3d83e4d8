"""Real local KFP runs (``kfp.local.SubprocessRunner(use_venv=False)``): equivalence with the
plain-Python baseline, retries, the non-retryable truth, resume through the cache, the exit
handler's notification, and the no-op workloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.tools.kubeflow.adapter import KubeflowAdapter
from shared_ml.config import load_config
from shared_ml.records import RunRecord
from shared_ml.runner import run_pipeline
from shared_ml.spec import PIPELINE
from tests.kubeflow.conftest import DEFAULT_CONFIG
from tests.webhook import WebhookReceiver

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> RunRecord:
    """The plain-Python baseline, same config and seed, in its own home."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORCHBENCH_HOME", str(tmp_path_factory.mktemp("baseline-home")))
        patch.delenv("ORCHBENCH_FAULTS", raising=False)
        return run_pipeline(load_config(DEFAULT_CONFIG), run_id="baseline")


def outcomes(record: RunRecord, step: str) -> list[str]:
    return [s.outcome for s in sorted(record.attempts(step), key=lambda s: s.attempt)]


# --- a clean run (through the orchbench CLI) --------------------------------------------
def test_metrics_and_prediction_hash_equal_the_baseline(
    clean_run: RunRecord, baseline: RunRecord
) -> None:
    assert clean_run.tool == "kubeflow" and clean_run.status == "success"
    assert baseline.status == "success"
    assert clean_run.prediction_hash == baseline.prediction_hash
    assert clean_run.metrics == baseline.metrics
    assert clean_run.config_fingerprint == baseline.config_fingerprint
    assert clean_run.versions["kfp"] == "2.17.3"
    assert {s.step for s in clean_run.steps} == set(PIPELINE.step_names)


def test_a_transient_fault_is_retried_and_succeeds(clean_run: RunRecord) -> None:
    assert outcomes(clean_run, "train") == ["failed", "success"]
    (failure,) = [s for s in clean_run.attempts("train") if s.outcome == "failed"]
    assert failure.error is not None and failure.error.retryable
    for step in set(PIPELINE.step_names) - {"train"}:
        assert outcomes(clean_run, step) == ["success"], step


def test_metrics_are_kfp_artifact_files(clean_run: RunRecord) -> None:
    # The cache treats an artifact without a file as a miss: the metrics must be a file.
    pipeline_root = Path(clean_run.tool_details["pipeline_root"])
    files = list(pipeline_root.glob("*/evaluate/metrics"))
    assert files, f"no metrics artifact file under {pipeline_root}"
    assert any(json.loads(f.read_text())["metrics"] == clean_run.metrics for f in files)


def test_no_notification_when_the_run_succeeds(
    clean_run: RunRecord, webhook: WebhookReceiver
) -> None:
    assert webhook.for_run(clean_run.run_id) == []


# --- a hard failure, then a resume ------------------------------------------------------
def test_non_retryable_error_still_consumes_every_kfp_retry(failed_run: RunRecord) -> None:
    """KFP's retry policy has no per-error condition: a NonRetryableError fails the task
    like any other exit code, so every retry is spent (and the backoff waited)."""
    assert failed_run.status == "failed"
    attempts = failed_run.attempts("evaluate")
    assert len(attempts) == PIPELINE.step("evaluate").retry.max_retries + 1
    assert all(a.outcome == "failed" for a in attempts)
    assert all(a.error is not None and not a.error.retryable for a in attempts)
    assert failed_run.attempts("register") == []


def test_task_timings_show_each_kfp_attempt(
    adapter: KubeflowAdapter, failed_run: RunRecord
) -> None:
    timings = [t for t in adapter.task_timings(failed_run.run_id) if t.task == "evaluate"]
    tries = PIPELINE.step("evaluate").retry.max_retries + 1
    assert sorted(t.try_number for t in timings) == list(range(1, tries + 1))
    assert all(t.state == "failed" and t.queued_at is None for t in timings)


def test_exit_handler_posts_the_failure_to_the_webhook(
    failed_run: RunRecord, webhook: WebhookReceiver
) -> None:
    (payload,) = webhook.for_run(failed_run.run_id)
    assert payload["orchbench"]["tool"] == "kubeflow"
    assert payload["orchbench"]["step"] == "evaluate"
    assert "non-retryable" in payload["orchbench"]["error"]
    assert failed_run.run_id in payload["text"] and payload["blocks"]


def test_resume_re_executes_only_the_failed_step_and_its_downstream(
    failed_run: RunRecord, resumed_run: RunRecord, baseline: RunRecord
) -> None:
    assert resumed_run.status == "success"
    expected = {"evaluate", *PIPELINE.downstream_of("evaluate")}
    assert set(resumed_run.tool_details["re_executed"]) == expected
    assert set(resumed_run.tool_details["cache_hits"]) == set(PIPELINE.step_names) - expected
    for step in set(PIPELINE.step_names) - expected:
        assert len(resumed_run.attempts(step)) == 1, step  # still only the first run's attempt
    assert resumed_run.prediction_hash == baseline.prediction_hash
    assert resumed_run.metrics == baseline.metrics


# --- the no-op scaling workloads --------------------------------------------------------
def test_chain_workload_runs_in_order(adapter: KubeflowAdapter) -> None:
    result = adapter.run_workload("chain", 2)
    assert result.status == "success"
    tasks = {t.task: t for t in result.tasks}
    assert set(tasks) == {"task_000", "task_001"}
    assert tasks["task_000"].ended_at <= tasks["task_001"].started_at
    assert adapter.execution_model == "process-per-task"


def test_fanout_workload_joins_after_every_leaf(adapter: KubeflowAdapter) -> None:
    result = adapter.run_workload("fanout", 2)
    assert result.status == "success"
    tasks = {t.task: t for t in result.tasks}
    assert set(tasks) == {"root", "leaf_000", "leaf_001", "join"}
    for leaf in ("leaf_000", "leaf_001"):
        assert tasks["root"].ended_at <= tasks[leaf].started_at
        assert tasks[leaf].ended_at <= tasks["join"].started_at
