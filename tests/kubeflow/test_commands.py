"""The kubeflow-env commands refuse bad input (config, date, backfill) before any KFP work."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from benchmarks.tools.base import BackfillNotSupported
from benchmarks.tools.kubeflow.adapter import KubeflowAdapter
from shared_ml.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bad_config(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("validation: {min_rows: 0}\n")
    return path


def test_run_local_exits_2_with_the_bad_key(bad_config: Path, kfp_home: Path) -> None:
    command = [sys.executable, "-m", "pipelines.kubeflow.run", "pipeline"]
    command += ["--config", str(bad_config), "--run-id", "never"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.startswith("error: invalid config:")
    assert "validation.min_rows" in done.stderr and "Traceback" not in done.stderr
    assert not (kfp_home / "var" / "kubeflow" / "workspace" / "never").exists()


def test_adapter_refuses_a_bad_config_before_any_subprocess(bad_config: Path) -> None:
    with pytest.raises(ConfigError, match=r"validation\.min_rows"):
        KubeflowAdapter().run_pipeline(bad_config, run_id="never")


def test_workload_shape_is_checked(kfp_home: Path) -> None:
    command = [sys.executable, "-m", "pipelines.kubeflow.run", "workload"]
    command += ["--shape", "chain", "--size", "0", "--run-id", "never"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "workload size must be >= 1" in done.stderr


def test_run_local_refuses_a_bad_date(kfp_home: Path) -> None:
    command = [sys.executable, "-m", "pipelines.kubeflow.run", "pipeline"]
    command += ["--config", str(REPO_ROOT / "configs" / "daily.yaml"), "--run-id", "never"]
    command += ["--date", "2026-02-30"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --date:") and "YYYY-MM-DD" in done.stderr
    assert not (kfp_home / "var" / "kubeflow" / "workspace" / "never").exists()


def test_backfill_is_not_supported_locally(kfp_home: Path) -> None:
    """kfp.local has no scheduler: the adapter refuses, naming KFP's way (a cluster
    recurring run with catchup). The CLI maps BackfillNotSupported to exit 2."""
    config = REPO_ROOT / "configs" / "daily.yaml"
    with pytest.raises(BackfillNotSupported, match="not supported locally") as refused:
        KubeflowAdapter().backfill(config, [date(2026, 1, 1), date(2026, 1, 2)])
    assert "no_catchup=False" in str(refused.value)
