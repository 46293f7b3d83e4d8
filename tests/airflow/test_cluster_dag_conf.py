"""The DAG side of a cluster run: a config sent by value in the run's conf is the run's config.

The params are resolved by Airflow's own ``process_params`` (what the task runner calls:
the DAG's params updated with the run's conf, then validated against each param's
schema), and the run's config is then built by the DAG module's own ``_run_config``, as
every task of the DAG does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from airflow.sdk.definitions.param import process_params

from pipelines.airflow.pipeline import _run_config, ml_dag
from shared_ml.config import load_config
from tests.airflow.conftest import REPO_ROOT

ONE_BRANCH_CONFIG = REPO_ROOT / "configs" / "bench-pipeline.yaml"


def _task_config(conf: dict) -> object:
    params = process_params(ml_dag, ml_dag.get_task("ingest"), conf, suppress_exception=False)
    dag_run = SimpleNamespace(
        logical_date=None,
        data_interval_start=None,
        data_interval_end=None,
        run_after=datetime(2026, 5, 4, 12, tzinfo=UTC),
    )
    return _run_config({"dag_run": dag_run, "params": params})


def test_a_config_in_the_conf_is_the_runs_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHBENCH_ARTIFACT_ROOT", "s3://pods-bucket")
    shipped = load_config(ONE_BRANCH_CONFIG, seed=11).model_dump(
        mode="json", exclude={"partition", "storage"}
    )
    # A config_path that cannot be read: the shipped config must be used instead.
    config = _task_config({"config": shipped, "config_path": "/nowhere/on/this/pod.yaml"})
    assert config.seed == 11
    assert config.candidate_names == load_config(ONE_BRANCH_CONFIG).candidate_names
    # Storage left relative resolves in the task's process, under the pods' object store.
    assert config.storage.runs_root == "s3://pods-bucket/var/runs"
    assert config.logical_date.isoformat() == "2026-05-04"


def test_conf_faults_and_seed_apply_to_a_shipped_config() -> None:
    shipped = load_config(ONE_BRANCH_CONFIG).model_dump(mode="json", exclude={"partition"})
    config = _task_config(
        {"config": shipped, "seed": 5, "faults": {"train": {"transient_attempts": 1}}}
    )
    assert config.seed == 5
    assert config.faults["train"].transient_attempts == 1


def test_without_a_shipped_config_the_path_is_read() -> None:
    config = _task_config({"config_path": str(ONE_BRANCH_CONFIG), "seed": 3})
    assert config.seed == 3
    assert config.candidate_names == load_config(ONE_BRANCH_CONFIG).candidate_names
