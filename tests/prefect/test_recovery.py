"""Retries, non-retryable failures (in every branch of `train`), the failure webhook and
e-mail, each attempt's log read back through `orchbench logs` from Prefect's logs API, the
per-step figures of the run record, resume from the cache, and a flow-run process killed
with SIGKILL under the worker (its `on_crashed` alert): all against the real server."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from benchmarks.tools.prefect.adapter import EXECUTION_PATHS, PrefectAdapter
from benchmarks.tools.prefect.client import PrefectClient
from shared_ml.config import load_config
from shared_ml.notify import ALERT_TO_ENV
from shared_ml.records import RunRecord
from shared_ml.spec import PIPELINE, parse_task_key
from tests.smtp import SmtpServer
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
def faulty_run(
    in_process_adapter: PrefectAdapter, config_path: Path, webhook: WebhookReceiver
) -> RunRecord:
    """validate fails once (transient), train fails for good (non-retryable); a dated
    in-process run (the date goes in as the flow's `logical_date` parameter; the webhook
    URL, set after the worker started, reaches only a flow started from here)."""
    return in_process_adapter.run_pipeline(
        config_path,
        run_id="prefect-faulty",
        faults={"validate": {"transient_attempts": 1}, "train": {"non_retryable": True}},
        logical_date=FAULTY_RUN_DATE,
    )


@pytest.fixture(scope="module")
def fixed_rerun(
    in_process_adapter: PrefectAdapter, config_path: Path, faulty_run: RunRecord
) -> RunRecord:
    return in_process_adapter.resume_pipeline(faulty_run, config_path)


def orchbench(*args: str) -> Result:
    """The orchbench CLI app, in this process."""
    from typer.testing import CliRunner

    from benchmarks.cli import app

    return CliRunner().invoke(app, list(args))


def mails_about(smtp: SmtpServer, run_id: str, timeout_s: float = 60.0) -> list[EmailMessage]:
    """The alert e-mails whose subject names ``run_id``, once at least one arrived."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [m for m in smtp.messages if f"run {run_id} " in str(m["Subject"])]
        if found:
            return found
        time.sleep(0.25)
    subjects = [str(m["Subject"]) for m in smtp.messages]
    raise AssertionError(f"no alert e-mail about {run_id} within {timeout_s:.0f} s: {subjects}")


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


def test_failure_alert_is_also_emailed(faulty_run: RunRecord, smtp: SmtpServer) -> None:
    """The on_failure hook e-mails the same alert as the webhook's to the SMTP server."""
    [mail] = mails_about(smtp, faulty_run.run_id)
    assert mail["To"] == os.environ[ALERT_TO_ENV]  # the session's SMTP settings (conftest)
    subject = str(mail["Subject"]).strip()
    assert subject.startswith(f"prefect: {PIPELINE.name} run {faulty_run.run_id} failed in step")
    step = subject.split("failed in step ")[1].strip("`")
    assert parse_task_key(step)[0] == "train"
    body = mail.get_content()
    assert f"step: {step}" in body
    assert "InjectedNonRetryableError" in body
    assert "injected non-retryable failure in step 'train'" in body


def test_orchbench_logs_reads_each_attempt_from_prefect_with_the_injected_error(
    faulty_run: RunRecord, config_path: Path, candidates: tuple[str, ...]
) -> None:
    """`orchbench logs --tool prefect` reads the task run's lines from Prefect's logs API:
    shared_ml's own (the flow process names `shared_ml` in PREFECT_LOGGING_EXTRA_LOGGERS)
    and Prefect's, split by attempt."""

    def step_log(step: str, attempt: int) -> str:
        done = orchbench(
            "logs", faulty_run.run_id, "--tool", "prefect", "--step", step,
            "--attempt", str(attempt), "--config", str(config_path),
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        return done.stdout

    first = step_log("validate", 1)
    assert "# Prefect task run validate " in first
    assert f"[{faulty_run.run_id} validate attempt 1] validate started" in first
    assert "injected transient failure in step 'validate'" in first
    assert "InjectedTransientError" in first
    assert " prefect.task_runs " in first  # Prefect's own line on the failure and retry
    assert "attempt 2]" not in first

    second = step_log("validate", 2)
    assert f"[{faulty_run.run_id} validate attempt 2] validate succeeded" in second
    assert "peak RSS" in second
    assert "injected" not in second

    for candidate in candidates:
        key = f"train[{candidate}]"
        text = step_log(key, 1)
        assert f"# Prefect task run {key} " in text
        assert f"[{faulty_run.run_id} {key} attempt 1] {key} failed" in text
        assert "injected non-retryable failure in step 'train'" in text


def test_run_record_has_duration_peak_memory_and_attempts_per_step(
    faulty_run: RunRecord, config_path: Path
) -> None:
    """Per step and branch: every attempt with its duration, the successful ones with
    their peak memory; the retried step shows two attempts. `orchbench show --json`
    prints the same record."""
    done = orchbench("show", faulty_run.run_id, "--json", "--config", str(config_path))
    assert done.exit_code == 0, done.output
    shown = RunRecord.model_validate(json.loads(done.stdout))
    assert [(s.key, s.attempt) for s in shown.steps] == [
        (s.key, s.attempt) for s in faulty_run.steps
    ]
    assert [s.attempt for s in shown.attempts("validate")] == [1, 2]
    assert all(s.duration_s is not None and s.duration_s > 0 for s in shown.steps)
    succeeded = [s for s in shown.steps if s.outcome == "success"]
    assert {s.key for s in succeeded} == UPSTREAM_OF_TRAIN
    assert all(s.peak_rss_mb is not None and s.peak_rss_mb > 0 for s in succeeded)


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


def test_crash_is_alerted_by_the_on_crashed_hook(
    killed_run: RunRecord, smtp: SmtpServer, client: PrefectClient
) -> None:
    """The process worker saw its flow-run process die (SIGKILL), set CRASHED and ran the
    flow's on_crashed hook in a fresh process: its e-mail arrives, naming the steps that
    were running and Prefect's reason."""
    [mail] = mails_about(smtp, killed_run.run_id)
    running = {a.key for a in killed_run.attempts("train")}
    step = str(mail["Subject"]).strip().split("failed in step ")[1].strip("`")
    assert step in running
    body = mail.get_content()
    assert "flow run CRASHED while running" in body
    assert all(key in body for key in running)
    assert "-9" in body  # "Process exited with status code: -9"
    # The hook logged what it sent to the flow run's logs, which the UI shows.
    flow_run_id = killed_run.tool_details["flow_run_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lines = client.read_logs(flow_run_id=flow_run_id)
        if sent := [line for line in lines if "alert e-mailed" in line["message"]]:
            break
        time.sleep(0.5)
    assert sent and sent[0]["message"].startswith("Crashed alert e-mailed"), sent


def test_the_in_process_path_is_labelled_and_bypasses_deployment_and_worker(
    faulty_run: RunRecord, client: PrefectClient
) -> None:
    """The other path stays reachable, and its records say what it was measured on."""
    details = faulty_run.tool_details
    assert details["mode"] == "in-process"
    assert details["execution_path"] == EXECUTION_PATHS["in-process"]
    assert details["flow_run_execution"]["deployment_id"] is None
    assert details["flow_run_execution"]["worker_name"] is None
    assert client.read_flow_run(details["flow_run_id"])["deployment_id"] is None
