"""``--target cluster`` without a cluster: what the Airflow adapter sends and reads back.

Only the HTTP layer is faked (``httpx.MockTransport`` in place of the Airflow API server).
The fake cluster acts only on what the trigger carries, as a cluster does: its "pods" take
the config from the run's conf, validate it as a task does, and write their step records
where that config says, on a real S3 API (moto's server on 127.0.0.1, reached through
``AWS_ENDPOINT_URL`` as through a port-forward). The adapter must then read the record back
from there.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.tools.airflow import client as client_module
from benchmarks.tools.airflow.adapter import AirflowAdapter
from shared_ml.config import validate_config
from shared_ml.errors import ConfigError
from shared_ml.records import RunRecordError, read_run_record
from tests.cluster_support import write_select_record
from tests.unit.s3_server import s3_endpoint, use_endpoint  # noqa: F401  (fixture)

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG = "orchbench_ml"


class FakeCluster:
    """The Airflow API of a cluster whose task pods see nothing but the run's conf."""

    def __init__(self, pods_write_records: bool = True) -> None:
        self.pods_write_records = pods_write_records
        self.confs: list[dict[str, Any]] = []
        self.runs: dict[str, dict[str, Any]] = {}

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path == "/auth/token":
            return httpx.Response(201, json={"access_token": "token"})
        if path == f"/api/v2/dags/{DAG}" and method == "GET":
            return httpx.Response(200, json={"dag_id": DAG, "is_paused": False})
        if path == f"/api/v2/dags/{DAG}/dagRuns" and method == "POST":
            return self._trigger(json.loads(request.content))
        if path.startswith(f"/api/v2/dags/{DAG}/dagRuns/"):
            run_id = path.split("/")[6]
            if path.endswith("/taskInstances"):
                return httpx.Response(200, json={"task_instances": [], "total_entries": 0})
            return httpx.Response(200, json=self.runs[run_id])
        if path == "/api/v2/version":
            return httpx.Response(200, json={"version": "3.3.2"})
        return httpx.Response(404, json={"detail": f"{method} {path}"})

    def _trigger(self, body: dict[str, Any]) -> httpx.Response:
        self.confs.append(body["conf"])
        run_id, now = body["dag_run_id"], datetime.now(UTC)
        if self.pods_write_records:
            self._pods(run_id, body["conf"])
        self.runs[run_id] = {
            "dag_id": DAG,
            "dag_run_id": run_id,
            "state": "success",
            "run_type": "manual",
            "logical_date": None,
            "run_after": now.isoformat(),
            "queued_at": now.isoformat(),
            "start_date": now.isoformat(),
            "end_date": now.isoformat(),
        }
        return httpx.Response(200, json=self.runs[run_id])

    @staticmethod
    def _pods(run_id: str, conf: dict[str, Any]) -> None:
        """As a task pod: the config from the conf only (no file of the runner), validated
        as pipelines.airflow.tasks.run_config does; the step record where it says."""
        config = validate_config(conf["config"], "dag_run.conf -> config")
        write_select_record(config.storage.runs_root, run_id, 0.97, "abc123", "logreg")


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str):  # noqa: F811
    bucket = use_endpoint(monkeypatch, s3_endpoint, "orchbench-cluster-test")
    monkeypatch.setenv("ORCHBENCH_ARTIFACT_ROOT", bucket)
    monkeypatch.setenv("ORCHBENCH_AIRFLOW_PASSWORD", "secret")
    fake = FakeCluster()
    real_client = httpx.Client

    def mocked_client(**kwargs: Any) -> httpx.Client:
        return real_client(transport=httpx.MockTransport(fake.handle), **kwargs)

    monkeypatch.setattr(client_module.httpx, "Client", mocked_client)
    return fake, bucket


def _adapter() -> AirflowAdapter:
    return AirflowAdapter(target="cluster", url="http://airflow.cluster.test:8080")


def test_cluster_run_sends_the_config_by_value_and_reads_the_record_from_the_store(
    cluster, tmp_path
):
    fake, bucket = cluster
    record = _adapter().run_pipeline(REPO_ROOT / "configs" / "default.yaml", seed=7)

    (conf,) = fake.confs
    assert "config_path" not in conf and conf["config"]["seed"] == 7
    sent = json.dumps(conf)
    for local in {str(REPO_ROOT), str(Path.cwd()), str(Path.home()), os.sep + "tmp"}:
        assert local not in sent, f"the conf names {local}, a path of this machine"
    roots = conf["config"]["storage"]
    assert all(roots[k].startswith(f"{bucket}/") for k in ("artifact_root", "runs_root"))

    # The record comes from what the pods wrote, stored and read back from the store.
    assert [s.key for s in record.steps] == ["select"]
    assert record.metrics == {"f1": 0.97} and record.prediction_hash == "abc123"
    stored = read_run_record(roots["runs_root"], record.run_id)
    assert stored.prediction_hash == "abc123" and stored.status == "success"


def test_a_record_that_is_not_in_the_store_is_an_error(cluster):
    fake, _ = cluster
    fake.pods_write_records = False  # the pods wrote elsewhere, or nothing
    with pytest.raises(RunRecordError, match="no step record"):
        _adapter().run_pipeline(REPO_ROOT / "configs" / "default.yaml")


def test_cluster_run_needs_the_object_store(cluster, monkeypatch):
    fake, _ = cluster
    monkeypatch.delenv("ORCHBENCH_ARTIFACT_ROOT")
    with pytest.raises(ConfigError, match="ORCHBENCH_ARTIFACT_ROOT"):
        _adapter().run_pipeline(REPO_ROOT / "configs" / "default.yaml")
    assert fake.confs == []  # nothing was triggered


def test_a_data_file_of_this_machine_is_refused_before_the_trigger(cluster):
    fake, _ = cluster
    with pytest.raises(ConfigError, match=r"data\.source\.url"):
        _adapter().run_pipeline(REPO_ROOT / "configs" / "csv-example.yaml")
    assert fake.confs == []
