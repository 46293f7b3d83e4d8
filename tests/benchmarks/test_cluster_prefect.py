"""``--target cluster`` without a cluster: what the Prefect adapter registers, sends and reads.

Only the Prefect API is faked (``httpx.MockTransport`` in place of the cluster's server),
and the registration command's process (it would run ``pipelines.prefect.deploy
--kubernetes`` in the prefect environment against that server). The fake server acts only on
what it is sent, as a cluster does: its "flow-run pod" takes the config from the flow run's
parameters, validates it as the flow does, and writes a step record where that config
says, on a real S3 API (moto's server on 127.0.0.1, reached through ``AWS_ENDPOINT_URL`` as
through a port-forward). The adapter must read the record back from there.

Issue 15, defect 5 and points 2 and 6: nothing registered the deployments on the cluster's
server (the first cluster run met a 404), and a workload run sent a path of this machine.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.tools.prefect import client as client_module
from benchmarks.tools.prefect import cluster as cluster_module
from benchmarks.tools.prefect.adapter import PrefectAdapter
from benchmarks.tools.prefect.paths import PrefectRunError
from shared_ml.config import validate_config
from shared_ml.records import RunRecordError, read_run_record
from shared_ml.spec import PIPELINE
from tests.cluster_support import write_select_record
from tests.unit.s3_server import s3_endpoint, use_endpoint  # noqa: F401  (fixture)

REPO_ROOT = Path(__file__).resolve().parents[2]
API = "http://prefect.cluster.test:4200/api"
K8S_POOL = "orchbench-k8s"  # whatever the deploy command reports; the fake's pool


class FakePrefectServer:
    """The cluster's Prefect API: deployments appear once the registration ran."""

    def __init__(self, registered_on: str | None = None, pods_write_records: bool = True):
        # Pool of the deployments already there (None: none registered yet).
        self.pool = registered_on
        self.pools = {K8S_POOL: "kubernetes", "orchbench-process": "process"}
        self.pods_write_records = pods_write_records
        self.registrations: list[dict[str, Any]] = []
        self.flow_runs: dict[str, dict[str, Any]] = {}
        self.ids = (f"00000000-0000-0000-0000-{n:012d}" for n in itertools.count(1))

    # The registration command's process, as subprocess.run would have run it.
    def run_deploy_command(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
        self.registrations.append({"command": command, "env": kwargs["env"]})
        self.pool = K8S_POOL
        summary = {
            "deployment": "orchbench-ml/orchbench-ml",
            "workload_deployment": "orchbench-workload/orchbench-workload",
            "work_pool": K8S_POOL,
            "work_pool_type": "kubernetes",
        }
        return subprocess.CompletedProcess(command, 0, json.dumps(summary) + "\n", "")

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path.removeprefix("/api"), request.method
        if path.startswith("/deployments/name/"):
            flow, name = path.split("/")[3:5]
            if self.pool is None:
                return httpx.Response(404, json={"detail": "Deployment not found"})
            return httpx.Response(
                200, json={"id": f"deployment-{flow}", "name": name, "work_pool_name": self.pool}
            )
        if path.startswith("/work_pools/") and method == "GET":
            return httpx.Response(
                200, json={"name": path.split("/")[2], "type": self.pools[path.split("/")[2]]}
            )
        if path.endswith("/create_flow_run"):
            return self._create_flow_run(path.split("/")[2], json.loads(request.content))
        if path.startswith("/flow_runs/") and method == "GET":
            return httpx.Response(200, json=self.flow_runs[path.split("/")[2]])
        if path == "/task_runs/filter":
            [flow_run_id] = json.loads(request.content)["task_runs"]["flow_run_id"]["any_"]
            return httpx.Response(200, json=self.flow_runs[flow_run_id]["task_runs"])
        if path == "/flow_run_states/":
            return httpx.Response(200, json=[])
        if path == "/admin/version":
            return httpx.Response(200, json="3.9.1")
        return httpx.Response(404, json={"detail": f"{method} {path}"})

    def _create_flow_run(self, deployment_id: str, body: dict[str, Any]) -> httpx.Response:
        flow_run_id, now = next(self.ids), datetime.now(UTC).isoformat()
        parameters = body["parameters"]
        if deployment_id == "deployment-orchbench-ml":
            names = list(
                validate_config(parameters["config"], "flow parameter 'config'").candidate_names
            )
            task_names = list(PIPELINE.expand(tuple(names)))
            if self.pods_write_records:
                self._pod(parameters)
        else:
            size = parameters["size"]
            task_names = [
                f"t{i}" for i in range(size if parameters["shape"] == "chain" else size + 2)
            ]
        completed = {"type": "COMPLETED", "name": "Completed"}
        self.flow_runs[flow_run_id] = {
            "id": flow_run_id,
            "name": body.get("name"),
            "deployment_id": deployment_id,
            "work_pool_name": self.pool,
            "parameters": parameters,
            "state": completed,
            "created": now,
            "start_time": now,
            "end_time": now,
            "expected_start_time": now,
            "task_runs": [
                {
                    "id": next(self.ids),
                    "name": name,
                    "state": completed,
                    "run_count": 1,
                    "start_time": now,
                    "end_time": now,
                    "task_inputs": {},
                }
                for name in task_names
            ],
        }
        return httpx.Response(201, json=self.flow_runs[flow_run_id])

    @staticmethod
    def _pod(parameters: dict[str, Any]) -> None:
        """As the flow-run pod: the config from the parameters only, validated as the flow
        does, a step record where it says."""
        config = validate_config(parameters["config"], "flow parameter 'config'")
        write_select_record(
            config.storage.runs_root, parameters["run_id"], 0.96, "feed42", "forest"
        )


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str) -> str:  # noqa: F811
    bucket = use_endpoint(monkeypatch, s3_endpoint, "orchbench-prefect-cluster-test")
    monkeypatch.setenv("ORCHBENCH_ARTIFACT_ROOT", bucket)
    return bucket


def serve(monkeypatch: pytest.MonkeyPatch, fake: FakePrefectServer) -> None:
    """Every PrefectClient talks to the fake; the registration runs the fake's command."""
    real_client = httpx.Client

    def mocked_client(**kwargs: Any) -> httpx.Client:
        return real_client(transport=httpx.MockTransport(fake.handle), **kwargs)

    monkeypatch.setattr(client_module.httpx, "Client", mocked_client)
    real_register = cluster_module.register_on_cluster

    def register(api_url: str, config_path: Path = cluster_module.DEFAULT_DEPLOY_CONFIG, run=None):
        return real_register(api_url, config_path, run=fake.run_deploy_command)

    monkeypatch.setattr(cluster_module, "register_on_cluster", register)


def adapter() -> PrefectAdapter:
    return PrefectAdapter(target="cluster", url=API)


def test_a_cluster_run_registers_the_deployments_then_reads_the_record_from_the_store(
    monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    fake = FakePrefectServer(registered_on=None)
    serve(monkeypatch, fake)
    record = adapter().run_pipeline(REPO_ROOT / "configs" / "default.yaml", seed=7)

    # Registered once, on the cluster's server, on the Kubernetes pool.
    [registration] = fake.registrations
    assert registration["env"]["PREFECT_API_URL"] == API
    assert registration["command"][1:4] == ["-m", "pipelines.prefect.deploy", "--kubernetes"]
    # The config by value, storage on the store, no path of this machine.
    [flow_run] = fake.flow_runs.values()
    sent = json.dumps(flow_run["parameters"])
    for local in {str(REPO_ROOT), str(Path.cwd()), str(Path.home()), os.sep + "tmp"}:
        assert local not in sent, f"the flow run's parameters name {local}, a path here"
    runs_root = flow_run["parameters"]["config"]["storage"]["runs_root"]
    assert runs_root.startswith(f"{store}/") and flow_run["parameters"]["config"]["seed"] == 7
    # The record: what the pod wrote, stored and read back from the store.
    assert [s.key for s in record.steps] == ["select"]
    assert (record.prediction_hash, record.metrics) == ("feed42", {"f1": 0.96})
    assert read_run_record(runs_root, record.run_id).prediction_hash == "feed42"


def test_deployments_already_on_the_kubernetes_pool_are_not_registered_again(
    monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    fake = FakePrefectServer(registered_on=K8S_POOL)
    serve(monkeypatch, fake)
    runner = adapter()
    runner.run_pipeline(REPO_ROOT / "configs" / "default.yaml")
    runner.run_workload("chain", 2)
    assert fake.registrations == []


def test_deployments_on_a_process_pool_are_moved_to_the_kubernetes_pool(
    monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    """A process worker would run the flow wherever it runs, not in the cluster."""
    fake = FakePrefectServer(registered_on="orchbench-process")
    serve(monkeypatch, fake)
    adapter().run_pipeline(REPO_ROOT / "configs" / "default.yaml")
    assert len(fake.registrations) == 1
    assert {run["work_pool_name"] for run in fake.flow_runs.values()} == {K8S_POOL}


def test_a_workload_run_sends_no_path_of_this_machine(
    monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    fake = FakePrefectServer(registered_on=K8S_POOL)
    serve(monkeypatch, fake)
    result = adapter().run_workload("fanout", 3)
    [flow_run] = fake.flow_runs.values()
    assert flow_run["parameters"]["runs_root"] is None
    assert result.status == "completed" and len(result.tasks) == 5


def test_a_run_whose_pods_wrote_nothing_to_the_store_is_an_error(
    monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    fake = FakePrefectServer(registered_on=K8S_POOL, pods_write_records=False)
    serve(monkeypatch, fake)
    with pytest.raises(RunRecordError, match="no step record"):
        adapter().run_pipeline(REPO_ROOT / "configs" / "default.yaml")


def test_a_failed_registration_names_the_server(
    monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    fake = FakePrefectServer(registered_on=None)
    serve(monkeypatch, fake)

    def refused(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(
            command, 2, "", "error: work pool exists with type 'process'"
        )

    monkeypatch.setattr(fake, "run_deploy_command", refused)
    with pytest.raises(PrefectRunError, match=f"registering the deployments on {API} failed"):
        adapter().run_pipeline(REPO_ROOT / "configs" / "default.yaml")
