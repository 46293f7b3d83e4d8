"""Fixtures shared by every suite. Imports nothing but shared_ml and the standard library."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIGS = REPO_ROOT / "configs"


def pytest_configure(config: pytest.Config) -> None:
    """A shell set up for the cluster exports ORCHBENCH_ARTIFACT_ROOT (s3://...): every
    relative storage root would then resolve into that bucket, and the tests would write
    to it. Tests that want an object store set the variable themselves."""
    os.environ.pop("ORCHBENCH_ARTIFACT_ROOT", None)


@pytest.fixture
def orchbench_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ORCHBENCH_HOME: artifacts, registry and run records land in tmp. So do
    the Airflow and Prefect homes an adapter starts services in: never the user's own
    (var/airflow, var/prefect), whose running services a test would use or stop."""
    monkeypatch.setenv("ORCHBENCH_HOME", str(tmp_path))
    monkeypatch.setenv("ORCHBENCH_AIRFLOW_HOME", str(tmp_path / "airflow-home"))
    monkeypatch.setenv("ORCHBENCH_PREFECT_HOME", str(tmp_path / "prefect-home"))
    for variable in ("ORCHBENCH_AIRFLOW_DB_URL", "ORCHBENCH_AIRFLOW_DB"):  # the user's DB
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("ORCHBENCH_FAULTS", raising=False)
    return tmp_path
