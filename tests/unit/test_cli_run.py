"""Code tier: `orchbench run --tool local` end to end, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from shared_ml.records import RunRecord
from tests.conftest import CONFIGS, REPO_ROOT


def orchbench(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.cli", *args],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": "/usr/bin:/bin", "ORCHBENCH_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)},
    )


def test_run_json_prints_the_run_record(tmp_path: Path) -> None:
    done = orchbench("run", "--config", str(CONFIGS / "default.yaml"), "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    record = RunRecord.model_validate_json(done.stdout)
    assert record.tool == "local" and record.status == "success"
    assert [s.step for s in record.steps] == [
        "ingest",
        "validate",
        "preprocess",
        "train",
        "evaluate",
        "register",
    ]
    on_disk = json.loads((tmp_path / "var" / "runs" / record.run_id / "run.json").read_text())
    assert on_disk["prediction_hash"] == record.prediction_hash
    assert record.versions["scikit-learn"]


def test_run_human_output_and_failure_exit_code(tmp_path: Path) -> None:
    done = orchbench(
        "run",
        "--config",
        str(CONFIGS / "default.yaml"),
        "--fault",
        "train:non_retryable=true",
        home=tmp_path,
    )
    assert done.returncode == 1
    assert "failed" in done.stdout and "train" in done.stdout


def test_help_explains_itself(tmp_path: Path) -> None:
    done = orchbench("run", "--help", home=tmp_path)
    assert done.returncode == 0
    for option in ("--tool", "--config", "--json", "--fault", "--seed"):
        assert option in done.stdout
