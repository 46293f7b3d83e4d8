"""``orchbench runs / show / logs`` when the config's runs root is on an object store (as
``$ORCHBENCH_ARTIFACT_ROOT`` puts it on a cluster's store, read through its port-forward):
a real plain-runner run kept on moto's S3 server on 127.0.0.1, read back by each command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from benchmarks.cli import app
from benchmarks.tools.kubeflow.adapter import KubeflowAdapter
from shared_ml import storage
from shared_ml.records import RunRecord, read_run_record
from tests.unit.s3_server import s3_endpoint, use_endpoint

__all__ = ["s3_endpoint"]  # the session fixture, used by name


def orchbench(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def small_config(path: Path, name: str, seed: int) -> Path:
    """One candidate on a bundled dataset, its storage relative (so on the store)."""
    config = {
        "name": name,
        "seed": seed,
        "data": {"source": {"kind": "bundled", "name": "breast_cancer"}},
        "model": {"estimator": "logistic_regression"},
        "gate": {"min_accuracy": 0.9},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_runs_show_and_logs_read_a_runs_root_on_the_object_store(
    s3_endpoint: str, orchbench_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = use_endpoint(monkeypatch, s3_endpoint, "t-inspection-object-store")
    monkeypatch.setenv(storage.ARTIFACT_ROOT_ENV, bucket)
    config = small_config(orchbench_home / "config.yaml", "inspection-s3", seed=3)
    runs_root = f"{bucket}/var/runs"
    code, out, err = orchbench("run", "--config", config, "--run-id", "on-s3", "--json")
    assert code == 0, err
    ran = RunRecord.model_validate_json(out)
    assert read_run_record(runs_root, "on-s3").prediction_hash == ran.prediction_hash
    # A run whose record is not written yet (its steps still running) is no problem.
    storage.write_text(f"{runs_root}/in-flight/steps/ingest.attempt-1.json", "{}")

    code, out, err = orchbench("runs", "--config", config, "--json")
    assert code == 0, err
    assert [r["run_id"] for r in json.loads(out)] == ["on-s3"]
    assert "warning" not in err

    code, out, err = orchbench("show", "on-s3", "--config", config, "--json")
    assert code == 0, err
    assert RunRecord.model_validate_json(out).model_dump() == ran.model_dump()
    code, _, err = orchbench("show", "nope", "--config", config)
    assert code == 1
    assert f"{runs_root}/nope/run.json does not exist" in " ".join(err.split())

    code, out, err = orchbench("logs", "on-s3", "--tool", "local", "--step", "ingest", "--config", config)  # fmt: skip
    assert code == 0, err
    assert out.startswith("=== ingest attempt 1 ===\n") and "ingest succeeded" in out

    assert not (orchbench_home / "var").exists(), "nothing may be read from the local disk"


def test_a_kfp_cluster_steps_log_is_read_from_the_clusters_store(
    s3_endpoint: str, orchbench_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a cluster each KFP step pod runs ``shared_ml.execution``, which keeps every
    attempt's log beside its step record in the store the shipped config names: the
    adapter reads it from there (the KFP API serves no logs). Here the steps are run by
    the plain runner against the same store, with a fault injected into train."""
    bucket = use_endpoint(monkeypatch, s3_endpoint, "t-kfp-cluster-step-log")
    monkeypatch.setenv(storage.ARTIFACT_ROOT_ENV, bucket)
    config = small_config(orchbench_home / "cluster-config.yaml", "kfp-cluster-log", seed=5)
    run = ["run", "--config", config, "--run-id", "pods", "--fault", "train:transient_attempts=1"]
    code, out, err = orchbench(*run, "--json")
    assert code == 0, err
    ran = RunRecord.model_validate_json(out)
    (train_key,) = {s.key for s in ran.steps if s.step == "train"}
    on_cluster = ran.model_copy(update={"tool": "kubeflow", "tool_details": {"target": "cluster"}})
    adapter = KubeflowAdapter(target="cluster", url="http://127.0.0.1:9")  # never called

    first = adapter.step_log(config, on_cluster, train_key, 1)
    assert "injected transient failure in step 'train'" in first
    assert f"{train_key} succeeded" in adapter.step_log(config, on_cluster, train_key, 2)
    with pytest.raises(FileNotFoundError, match=r"KFP UI \(Runs -> the run -> the step"):
        adapter.step_log(config, on_cluster, train_key, 3)
    assert not (orchbench_home / "var").exists(), "nothing may be read from the local disk"
