"""Real local KFP runs (``kfp.local.SubprocessRunner(use_venv=False)``): equivalence with the
plain-Python baseline on configs/default.yaml and configs/daily.yaml, the ParallelFor branches
as kfp.local runs them, retries inside a branch, the non-retryable truth, resume through the
cache, the exit handler's notification, and the no-op workloads."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from benchmarks.tools.kubeflow.adapter import KubeflowAdapter
from shared_ml.config import load_config
from shared_ml.records import RunRecord
from shared_ml.runner import run_pipeline
from shared_ml.spec import PIPELINE
from tests.kubeflow.conftest import DAILY_CONFIG, DAILY_DATE, DEFAULT_CONFIG, link_partitions
from tests.moments import assert_moments_in_order
from tests.webhook import WebhookReceiver

pytestmark = pytest.mark.slow


def plain_run(
    factory: pytest.TempPathFactory, config_path: Path, logical_date: date | None
) -> RunRecord:
    """The plain-Python baseline, same config, seed and date, in a home of its own."""
    home = factory.mktemp("baseline-home")
    link_partitions(home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORCHBENCH_HOME", str(home))
        patch.delenv("ORCHBENCH_FAULTS", raising=False)
        config = load_config(config_path)
        return run_pipeline(config, run_id="baseline", logical_date=logical_date)


@pytest.fixture(scope="module")
def default_baseline(tmp_path_factory: pytest.TempPathFactory, clean_run: RunRecord) -> RunRecord:
    return plain_run(tmp_path_factory, DEFAULT_CONFIG, clean_run.logical_date)


@pytest.fixture(scope="module")
def daily_baseline(tmp_path_factory: pytest.TempPathFactory) -> RunRecord:
    return plain_run(tmp_path_factory, DAILY_CONFIG, DAILY_DATE)


def outcomes(record: RunRecord, step: str, branch: str | None = None) -> list[str]:
    attempts = sorted(record.attempts(step, branch), key=lambda s: s.attempt)
    return [s.outcome for s in attempts]


def assert_same_results(run: RunRecord, baseline: RunRecord) -> None:
    assert run.status == baseline.status == "success"
    assert run.selected_candidate == baseline.selected_candidate
    assert run.metrics == baseline.metrics
    assert run.prediction_hash == baseline.prediction_hash
    assert run.logical_date == baseline.logical_date
    assert run.data_interval == baseline.data_interval


# --- a clean run (through the orchbench CLI) --------------------------------------------
def test_default_config_gives_the_baseline_results(
    clean_run: RunRecord, default_baseline: RunRecord
) -> None:
    assert clean_run.tool == "kubeflow"
    assert clean_run.logical_date is not None  # a manual run stands for its day
    assert_same_results(clean_run, default_baseline)
    assert clean_run.config_fingerprint == default_baseline.config_fingerprint
    assert clean_run.versions["kfp"] == "2.17.3"


def test_the_run_executed_the_expanded_spec(clean_run: RunRecord) -> None:
    """One task per key of PIPELINE.expand: a train and an evaluate per candidate."""
    candidates = load_config(DEFAULT_CONFIG).candidate_names
    assert {s.key for s in clean_run.steps} == set(PIPELINE.expand(candidates))
    assert {row["candidate"] for row in clean_run.candidates} == set(candidates)


def test_a_transient_fault_is_retried_in_every_branch(clean_run: RunRecord) -> None:
    for candidate in load_config(DEFAULT_CONFIG).candidate_names:
        assert outcomes(clean_run, "train", candidate) == ["failed", "success"], candidate
        (failure,) = [s for s in clean_run.attempts("train", candidate) if s.outcome == "failed"]
        assert failure.error is not None and failure.error.retryable
    for step in set(PIPELINE.step_names) - {"train"}:
        for key in {s.key for s in clean_run.attempts(step)}:
            assert [s.outcome for s in clean_run.steps if s.key == key] == ["success"], key


def test_kfp_local_runs_at_most_two_branches_at_once(clean_run: RunRecord) -> None:
    """kfp.local 2.17.3 runs ParallelFor iterations in a thread pool capped at two workers
    (``ParallelExecutor.conservative_max``): of three candidate branches, two run side by
    side and the third waits for a free worker. A branch spans its first train attempt's
    start to its evaluate's end (step records)."""
    candidates = load_config(DEFAULT_CONFIG).candidate_names
    assert len(candidates) == 3
    spans = {}
    for candidate in candidates:
        trained = clean_run.attempts("train", candidate)
        (evaluated,) = clean_run.attempts("evaluate", candidate)
        spans[candidate] = (min(s.started_at for s in trained), evaluated.ended_at)
    # Most branches open at one instant: sweep the starts and ends in time order.
    events = sorted(
        [(start, 1) for start, _ in spans.values()] + [(end, -1) for _, end in spans.values()]
    )
    open_now, most = 0, 0
    for _, change in events:
        open_now += change
        most = max(most, open_now)
    assert most == 2, spans


def test_metrics_are_kfp_artifact_files(clean_run: RunRecord) -> None:
    # The cache treats an artifact without a file as a miss: the metrics must be files,
    # one per branch (inside the loop's iterations) and select's.
    pipeline_root = Path(clean_run.tool_details["pipeline_root"])
    assert clean_run.started_at is not None and clean_run.ended_at is not None
    during = (clean_run.started_at.timestamp(), clean_run.ended_at.timestamp())
    files = [  # the pipeline root is shared by the session's runs: this run's files only
        f
        for f in pipeline_root.rglob("metrics")
        if f.parent.name in ("evaluate", "select") and during[0] <= f.stat().st_mtime <= during[1]
    ]
    evaluations = [json.loads(f.read_text()) for f in files]
    by_candidate = {e["candidate"]: e["metrics"] for e in evaluations}
    assert set(by_candidate) == set(load_config(DEFAULT_CONFIG).candidate_names)
    assert by_candidate[clean_run.selected_candidate] == clean_run.metrics


def test_no_notification_when_the_run_succeeds(
    clean_run: RunRecord, webhook: WebhookReceiver
) -> None:
    assert webhook.for_run(clean_run.run_id) == []


# --- a daily run for a fixed date: a hard failure in the fan-in, then a resume -------------
def test_non_retryable_error_still_consumes_every_kfp_retry(failed_run: RunRecord) -> None:
    """KFP's retry policy has no per-error condition: a NonRetryableError fails the task
    like any other exit code, so every retry is spent (and the backoff waited)."""
    assert failed_run.status == "failed"
    assert failed_run.logical_date == DAILY_DATE
    attempts = failed_run.attempts("select")
    assert len(attempts) == PIPELINE.step("select").retry.max_retries + 1
    assert all(a.outcome == "failed" for a in attempts)
    assert all(a.error is not None and not a.error.retryable for a in attempts)
    assert failed_run.attempts("register") == [] and failed_run.attempts("score") == []


def test_task_timings_show_each_kfp_attempt(
    adapter: KubeflowAdapter, failed_run: RunRecord
) -> None:
    timings = adapter.task_timings(failed_run.run_id)
    tries = PIPELINE.step("select").retry.max_retries + 1
    selects = [t for t in timings if t.task == "select"]
    assert sorted(t.try_number for t in selects) == list(range(1, tries + 1))
    assert all(t.state == "failed" and t.queued_at is None for t in selects)
    candidates = load_config(DAILY_CONFIG).candidate_names
    assert {t.task for t in timings if t.task.startswith("train[")} == {
        f"train[{c}]" for c in candidates
    }


def test_task_moments_are_present_and_ordered(
    adapter: KubeflowAdapter, failed_run: RunRecord
) -> None:
    """The launcher's subprocess start -> work start -> work end -> subprocess exit, for
    every attempt (the failed select tries too), within the runner's start -> end."""
    assert_moments_in_order(adapter.task_timings(failed_run.run_id), failed_run)


def test_exit_handler_posts_the_failure_to_the_webhook(
    failed_run: RunRecord, webhook: WebhookReceiver
) -> None:
    (payload,) = webhook.for_run(failed_run.run_id)
    assert payload["orchbench"]["tool"] == "kubeflow"
    assert payload["orchbench"]["step"] == "select"
    assert "non-retryable" in payload["orchbench"]["error"]
    assert failed_run.run_id in payload["text"] and payload["blocks"]


def test_resume_re_executes_only_the_failed_step_and_its_downstream(
    failed_run: RunRecord, resumed_run: RunRecord
) -> None:
    assert resumed_run.status == "success"
    expected = {"select", *PIPELINE.downstream_of("select")}
    assert set(resumed_run.tool_details["re_executed"]) == expected
    # Every branch task was a cache hit, once per candidate.
    candidates = load_config(DAILY_CONFIG).candidate_names
    upstream = set(PIPELINE.step_names) - expected
    assert Counter(resumed_run.tool_details["cache_hits"]) == {
        step: len(candidates) if PIPELINE.step(step).per_candidate else 1 for step in upstream
    }
    for key in {s.key for s in resumed_run.steps if s.step in upstream}:
        assert [s.attempt for s in resumed_run.steps if s.key == key] == [1], key


def test_daily_config_gives_the_baseline_results_for_its_date(
    resumed_run: RunRecord, daily_baseline: RunRecord
) -> None:
    assert resumed_run.logical_date == DAILY_DATE  # the resume kept the failed run's date
    assert_same_results(resumed_run, daily_baseline)
    assert resumed_run.scoring.get("logical_date") == DAILY_DATE.isoformat()


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
