"""The kubeflow-env commands refuse bad input before starting any KFP work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.tools.kubeflow.adapter import KubeflowAdapter
from shared_ml.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bad_config(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("validation: {min_rows: 0}\n")
    return path


def test_run_local_exits_2_with_the_bad_key(bad_config: Path, kfp_home: Path) -> None:
    command = [sys.executable, "-m", "pipelines.kubeflow.run_local", "pipeline"]
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
    command = [sys.executable, "-m", "pipelines.kubeflow.run_local", "workload"]
    command += ["--shape", "chain", "--size", "0", "--run-id", "never"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "workload size must be >= 1" in done.stderr
