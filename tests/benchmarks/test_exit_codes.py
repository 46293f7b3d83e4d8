"""Exit codes a CI job relies on: `orchbench bench` fails (3) when a scenario failed, after
writing its report; `orchbench run --target cluster` fails (1) when the run failed or its
record could not be read back complete."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import benchmarks.cli as orchbench_cli
from benchmarks.cli import app
from benchmarks.harness.bench import FAILED_STATUSES, failed_outcomes
from benchmarks.harness.cli import SCENARIO_FAILED
from shared_ml.records import RunRecord, StepRecord

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_SCHEMA = REPO_ROOT / "benchmarks" / "harness" / "schema" / "results.schema.json"
cli = CliRunner()


def _bench(output: Path, *extra: str) -> Any:
    return cli.invoke(
        app,
        [
            *("bench", "--tools", "local", "--scenarios", "latency", "--repeat", "1"),
            *("--quiet-wait", "0", "--output", str(output), *extra),
        ],
    )


def _results(output: Path) -> dict[str, Any]:
    (folder,) = output.iterdir()
    assert (folder / "report.html").is_file() and (folder / "report.md").is_file()
    return json.loads((folder / "results.json").read_text(encoding="utf-8"))


def test_a_failed_scenario_exits_3_after_writing_the_report(
    orchbench_home: Path, tmp_path: Path
) -> None:
    config = yaml.safe_load((REPO_ROOT / "configs" / "bench-pipeline.yaml").read_text())
    config["faults"] = {"train": {"non_retryable": True}}  # every run of the pipeline fails
    failing = tmp_path / "failing.yaml"
    failing.write_text(yaml.safe_dump(config), encoding="utf-8")

    done = _bench(tmp_path / "reports", "--config", str(failing))

    assert done.exit_code == SCENARIO_FAILED != 0, done.output
    results = _results(tmp_path / "reports")  # the report is written all the same
    failed = failed_outcomes(results)
    assert {o["scenario"] for o in failed} == {"warmup", "latency"}
    assert "local/defaults/r1 latency: error:" in done.output  # named on stderr


def test_a_clean_benchmark_exits_0(orchbench_home: Path, tmp_path: Path) -> None:
    done = _bench(tmp_path / "reports")
    assert done.exit_code == 0, done.output
    outcomes = _results(tmp_path / "reports")["outcomes"]
    assert outcomes and {o["status"] for o in outcomes} == {"ok"}


def test_only_error_outcomes_fail_a_benchmark() -> None:
    """Every status results.json may hold is either failing or explained in the report."""
    schema = json.loads(RESULTS_SCHEMA.read_text(encoding="utf-8"))
    statuses = set(schema["properties"]["outcomes"]["items"]["properties"]["status"]["enum"])
    assert {"error"} == FAILED_STATUSES
    assert statuses >= FAILED_STATUSES
    outcomes = [{"status": status} for status in sorted(statuses)]
    assert failed_outcomes({"outcomes": outcomes}) == [{"status": "error"}]
    not_failing = {"ok", "skipped", "not_applicable", "not_supported", "unavailable"}
    assert statuses - FAILED_STATUSES == not_failing


# --- orchbench run --target cluster -------------------------------------------------------


def _record(status: str = "success", **fields: Any) -> RunRecord:
    now = datetime.now(UTC)
    step = StepRecord.model_validate(
        {
            "step": "ingest",
            "attempt": 1,
            "outcome": "success",
            "started_at": now.isoformat(),
            "ended_at": now.isoformat(),
            "duration_s": 0.1,
        }
    )
    values: dict[str, Any] = {
        "run_id": "r1",
        "tool": "airflow",
        "pipeline": "orchbench-ml",
        "status": status,
        "config_fingerprint": "f" * 16,
        "seed": 42,
        "steps": [step],
        "metrics": {"f1": 0.97},
        "prediction_hash": "a" * 64,
    }
    values.update(fields)
    return RunRecord.model_validate(values)


class FakeClusterAdapter:
    """Stands in for a tool's cluster adapter: returns the given record, or raises."""

    def __init__(self, outcome: RunRecord | Exception) -> None:
        self.outcome = outcome

    def run_pipeline(self, *args: Any, **kwargs: Any) -> RunRecord:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    def services_left_running(self) -> str | None:
        return None


@pytest.mark.parametrize(
    ("outcome", "code", "said"),
    [
        (_record(), 0, None),
        (_record(status="failed"), 1, None),
        (_record(steps=[]), 1, "lacks steps"),
        (_record(metrics={}, prediction_hash=None), 1, "lacks metrics, prediction_hash"),
        (FileNotFoundError("s3://orchbench-artifacts/runs/r1/run.json"), 1, "did not complete"),
    ],
    ids=["complete", "failed", "no-steps", "no-results", "unreadable"],
)
def test_run_on_a_cluster_exits_non_zero_unless_its_record_is_complete(
    orchbench_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    outcome: RunRecord | Exception,
    code: int,
    said: str | None,
) -> None:
    made: list[dict[str, Any]] = []

    def fake_get_adapter(tool: str, **kwargs: Any) -> FakeClusterAdapter:
        made.append({"tool": tool, **kwargs})
        return FakeClusterAdapter(outcome)

    monkeypatch.setattr(orchbench_cli, "get_adapter", fake_get_adapter)
    done = cli.invoke(
        app,
        [
            *("run", "--tool", "airflow", "--target", "cluster", "--url", "http://127.0.0.1:9"),
            *("--config", str(REPO_ROOT / "configs" / "default.yaml")),
        ],
    )
    assert done.exit_code == code, done.output
    assert made and made[0]["target"] == "cluster"
    if said:
        assert said in " ".join(done.output.split())
