"""The flow against a real server: its graph is the spec's, its numbers are the baseline's,
and `orchbench run --tool prefect --json` prints the same run record as the baseline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.environments import REPO_ROOT
from benchmarks.tools.prefect.client import PrefectClient, task_graph
from benchmarks.tools.prefect.services import ServicesState
from shared_ml.config import load_config
from shared_ml.records import RunRecord
from shared_ml.runner import run_pipeline
from shared_ml.spec import PIPELINE


@pytest.fixture(scope="module")
def cli_run(services: ServicesState, config_path: Path) -> RunRecord:
    """One clean run through the orchbench CLI (in-process flow against the server)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.cli",
            "run",
            "--tool",
            "prefect",
            "--config",
            str(config_path),
            "--run-id",
            "prefect-clean",
            "--json",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return RunRecord.model_validate_json(done.stdout)


def test_cli_prints_a_successful_prefect_run_record(cli_run: RunRecord) -> None:
    assert cli_run.tool == "prefect"
    assert cli_run.status == "success"
    assert [s.step for s in cli_run.steps] == list(PIPELINE.topological_order)
    assert all(s.outcome == "success" and s.attempt == 1 for s in cli_run.steps)
    assert cli_run.tool_details["flow_run_state"]["type"] == "COMPLETED"
    timings = {t["name"]: t for t in cli_run.tool_details["task_runs"]}
    assert set(timings) == set(PIPELINE.step_names)
    assert all(t["start_time"] and t["end_time"] and t["run_count"] == 1 for t in timings.values())


def test_flow_graph_from_the_real_run_equals_the_spec(
    cli_run: RunRecord, client: PrefectClient
) -> None:
    task_runs = client.read_task_runs(cli_run.tool_details["flow_run_id"])
    assert sorted(t["name"] for t in task_runs) == sorted(PIPELINE.step_names)
    assert task_graph(task_runs) == set(PIPELINE.edges)


def test_metrics_and_prediction_hash_equal_the_plain_python_baseline(
    cli_run: RunRecord, config_path: Path
) -> None:
    baseline = run_pipeline(load_config(config_path), run_id="local-baseline")
    assert baseline.status == "success"
    assert cli_run.prediction_hash == baseline.prediction_hash
    assert cli_run.metrics == baseline.metrics
    assert cli_run.config_fingerprint == baseline.config_fingerprint


def test_tasks_take_retries_and_backoff_from_the_spec() -> None:
    from pipelines.prefect.flow import STEP_TASKS, retry_delays

    for name, task in STEP_TASKS.items():
        policy = PIPELINE.step(name).retry
        assert task.retries == policy.max_retries, name
        assert task.retry_delay_seconds == retry_delays(policy), name
    assert retry_delays(PIPELINE.step("ingest").retry) == [1.0, 2.0, 4.0]


def test_the_run_record_is_written_where_the_baseline_writes_it(
    cli_run: RunRecord, config_path: Path
) -> None:
    runs_root = Path(load_config(config_path).storage.runs_root)
    written = json.loads((runs_root / cli_run.run_id / "run.json").read_text())
    assert written["tool"] == "prefect"
    assert written["prediction_hash"] == cli_run.prediction_hash
