"""shared_ml's log lines: each step attempt logs its start, end and figures, with the run
id, step and attempt in every record; failures log their error; JSON by env switch."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared_ml.logs import LOG_FORMAT_ENV, LOGGER_NAME
from shared_ml.records import run_dir
from shared_ml.runner import run_pipeline
from tests.conftest import CONFIGS, REPO_ROOT
from tests.unit.helpers import small_config


def step_logs(runs_root: str, run_id: str) -> dict[str, str]:
    folder = run_dir(runs_root, run_id) / "steps"
    return {p.name.removesuffix(".log"): p.read_text("utf-8") for p in folder.glob("*.log")}


def test_every_step_attempt_writes_its_own_log(orchbench_home: Path) -> None:
    config = small_config(faults={"train": {"transient_attempts": 1}})
    record = run_pipeline(config, sleep=lambda s: None)
    assert record.status == "success"
    logs = step_logs(config.storage.runs_root, record.run_id)
    # one log per step record, the failed first attempts of each branch included
    assert set(logs) == {f"{s.key}.attempt-{s.attempt}" for s in record.steps}
    for step in record.steps:
        text = logs[f"{step.key}.attempt-{step.attempt}"]
        context = f"[{record.run_id} {step.key} attempt {step.attempt}]"
        # one line per record (a traceback continues the record before it)
        lines = [line for line in text.splitlines() if line[:4].isdigit()]
        assert lines and all(context in line for line in lines), text
        assert f"{step.key} started" in lines[0]
        if step.outcome == "success":
            assert f"{step.key} succeeded in" in lines[-1]
        else:  # the injected error's message, and that it will be retried
            assert "failed after" in text and "retryable" in text
            assert step.error is not None and step.error.message in text
    register = logs["register.attempt-1"]
    assert "promoted" in register and "champion now version" in register
    assert f"selected {record.selected_candidate}" in logs["select.attempt-1"]


def test_a_failed_steps_log_names_the_error(orchbench_home: Path) -> None:
    config = small_config(faults={"validate": {"non_retryable": True}})
    record = run_pipeline(config, sleep=lambda s: None)
    assert record.status == "failed"
    (failed,) = [s for s in record.steps if s.outcome == "failed"]
    text = step_logs(config.storage.runs_root, record.run_id)[f"{failed.key}.attempt-1"]
    assert failed.error is not None and failed.error.message in text
    assert "not retryable" in text and "Traceback" in text


def test_json_lines_carry_run_step_and_attempt(
    orchbench_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LOG_FORMAT_ENV, "json")
    config = small_config()
    record = run_pipeline(config, sleep=lambda s: None)
    logs = step_logs(config.storage.runs_root, record.run_id)
    for step in record.steps:
        entries = [json.loads(line) for line in logs[f"{step.key}.attempt-1"].splitlines()]
        assert entries, step.key
        for entry in entries:
            assert (entry["run_id"], entry["step"], entry["attempt"]) == (
                record.run_id,
                step.key,
                1,
            )
            assert entry["levelname"] in ("INFO", "WARNING", "ERROR")
            # the prefix too: a host's own formatter (Airflow's) drops the extra keys
            assert entry["message"].startswith(f"[{record.run_id} {step.key} attempt 1] ")


def test_the_library_prints_through_its_hosts_handlers(
    orchbench_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No handler of its own in a host process: the host's root handlers see the lines
    (how Airflow's task log receives them)."""
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        record = run_pipeline(small_config(), sleep=lambda s: None)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith(LOGGER_NAME)]
    assert any(f"[{record.run_id} train[" in m and "succeeded" in m for m in messages)
    assert {
        getattr(r, "run_id", None) for r in caplog.records if r.name == "shared_ml.execution"
    } == {record.run_id}


def test_the_command_line_runner_logs_to_stderr_and_refuses_a_bad_format(
    orchbench_home: Path,
) -> None:
    config = CONFIGS / "default.yaml"
    command = [sys.executable, "-m", "shared_ml", "--config", str(config), "--run-id", "logs-cli"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "[logs-cli score attempt 1] score succeeded in" in done.stderr
    bad = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, LOG_FORMAT_ENV: "xml"},
    )
    assert bad.returncode == 2
    assert f"${LOG_FORMAT_ENV}='xml': expected text or json" in bad.stderr
