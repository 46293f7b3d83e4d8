"""Pod rehearsal, Prefect: two flow-run Jobs of the cluster's Kubernetes work pool, each the
exact container the worker would create, run on this machine (tests/rehearsal_support.py).

The server is real and local (``prefect server start``, SQLite). The deployments are
registered the way ``--target cluster`` registers them (``cluster_deployment_ids``: the
``orchbench-k8s`` pool from the committed base job template, ``python -m
pipelines.prefect.deploy --kubernetes``), and each flow run is created with the config by
value (``cluster_config``, as the adapter sends it). In place of the worker, this test asks
prefect-kubernetes for the Job it would submit (``KubernetesWorkerJobConfiguration
.resolve_for_flow_run``: the pool's template, the deployment's job variables, the flow
run's environment with ``PREFECT__FLOW_RUN_ID``, the command ``prefect flow-run execute``)
and proposes Pending as the worker does. The Job's container is then run here with its
args, env, ``envFrom`` Secret and the image's working directory, as uid 50000, the code
read-only, a fresh home, storage on moto's S3 on 127.0.0.1.

On Kubernetes one flow run is one pod that runs every step. So the two pods here are two
flow runs of the same config: the second (its own process and home) finds the model the
first registered, reading the registry the first wrote on the object store.

Not rehearsed (docs/rehearsal.md): the worker's polling, the kube API and the Job
controller; the pod reaches the server on 127.0.0.1 instead of the in-cluster service.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Pending
from prefect.utilities.engine import propose_state
from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

from benchmarks.tools.cluster import cluster_config
from benchmarks.tools.prefect.client import PrefectClient
from benchmarks.tools.prefect.cluster import DEPLOYMENTS, cluster_deployment_ids
from benchmarks.tools.prefect.services import PrefectServices, ServicesState, free_port
from pipelines.prefect.manifest import POOL_NAME
from shared_ml import storage
from shared_ml.records import read_run_record, read_step_records, run_record_location
from tests.rehearsal_support import (
    POD_GID,
    POD_UID,
    REPO_ROOT,
    Node,
    Pod,
    RehearsalError,
    container_env,
    image_layout,
    probe_identity,
    run_container,
    runner_paths_in,
    storage_left_in,
    store_secret,
)
from tests.unit.s3_server import CREDENTIALS, s3_endpoint, use_endpoint

__all__ = ["s3_endpoint"]  # the session fixture, used by name

pytestmark = pytest.mark.slow  # a real server and several Python processes: about a minute

CONFIG = REPO_ROOT / "configs" / "bench-pipeline.yaml"
ML_DEPLOYMENT = DEPLOYMENTS[0]  # (flow, deployment) of the ML pipeline


@pytest.fixture
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    built = Node(tmp_path_factory.mktemp("prefect-node"), Path(sys.prefix), image_layout("prefect"))
    yield built
    built.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServicesState]:
    """A Prefect server alone: no worker polls the Kubernetes pool here."""
    services = PrefectServices(tmp_path / "prefect")
    try:
        yield services.up(port=free_port(), worker=False, deploy_config=None)
    finally:
        services.down()


async def _job_for(flow_run_id: str) -> dict[str, Any]:
    """The Job manifest the Kubernetes worker would submit for the flow run."""
    async with get_client() as client:
        flow_run = await client.read_flow_run(uuid.UUID(flow_run_id))
        pool = await client.read_work_pool(POOL_NAME)
        configuration = await KubernetesWorkerJobConfiguration.resolve_for_flow_run(
            flow_run, client=client, work_pool=pool, worker_name="rehearsal"
        )
        await propose_state(client, Pending(), flow_run_id=flow_run.id)
        return configuration.job_manifest


def flow_run_pod(
    node: Node, job: dict[str, Any], secret: dict[str, str], name: str
) -> tuple[Pod, Any]:
    """Run the Job's one container here; (the pod, its result)."""
    pod_spec = job["spec"]["template"]["spec"]
    assert pod_spec["securityContext"]["runAsUser"] == POD_UID
    (container,) = pod_spec["containers"]
    if node.layout.entrypoint:
        raise RehearsalError(f"the image has an ENTRYPOINT {node.layout.entrypoint}: not rehearsed")
    env_from = {}
    for source in container.get("envFrom", []):
        assert source["secretRef"]["name"] == "orchbench-artifacts", source
        env_from.update(secret)
    spec_env = {item["name"]: item["value"] for item in container.get("env", [])}
    pod = node.new_pod(name, writable=[])
    env = container_env(node, pod, spec_env, env_from)
    workdir = container.get("workingDir", node.layout.workdir)
    return pod, run_container(node, pod, list(container["args"]), env, workdir)


def test_flow_runs_as_kubernetes_jobs_share_only_the_store(
    node: Node, server: ServicesState, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"prefect-rehearsal-{uuid.uuid4().hex[:8]}"
    artifact_root = use_endpoint(monkeypatch, s3_endpoint, bucket)
    monkeypatch.setenv(storage.ARTIFACT_ROOT_ENV, artifact_root)
    secret = store_secret(s3_endpoint, bucket, CREDENTIALS)
    config = cluster_config(CONFIG, seed=None)
    shipped = config.model_dump(mode="json", exclude={"partition"})
    assert runner_paths_in(shipped, extra=(node.root,)) == []

    probe = node.new_pod("probe", writable=[])
    identity = probe_identity(node, probe, container_env(node, probe, {}, {}), node.layout.workdir)
    assert identity["uid"] != 0 and not identity["code_writable"] and identity["home_writable"]
    assert identity["shared_ml"].startswith(str(node.code)), identity
    if node.user is not None:
        assert (identity["uid"], identity["gid"], identity["groups"]) == (POD_UID, POD_GID, [])
        assert not identity["repository_visible"]

    run_ids, pods = [], []
    with (
        PrefectClient(server.api_url) as client,
        temporary_settings({PREFECT_API_URL: server.api_url}),
    ):
        deployment_id = cluster_deployment_ids(client)[ML_DEPLOYMENT]
        flow_run_ids = []
        # The third pod resumes the first run (same orchbench run id, a fresh pod and home).
        for attempt in ("first", "second", "resume"):
            fresh = f"prefect-rehearsal-{attempt}-{uuid.uuid4().hex[:6]}"
            run_id = run_ids[0] if attempt == "resume" else fresh
            flow_run = client.create_flow_run_from_deployment(
                deployment_id,
                parameters={"config": shipped, "run_id": run_id},
                name=f"{run_id}-{attempt}",
            )
            flow_run_ids.append(flow_run["id"])
            job = asyncio.run(_job_for(flow_run["id"]))
            args = job["spec"]["template"]["spec"]["containers"][0]["args"]
            assert args == shlex.split("prefect flow-run execute"), args
            pod, result = flow_run_pod(node, job, secret, attempt)
            assert result.returncode == 0, result.output()
            state = client.read_flow_run(flow_run["id"])["state"]["type"]
            assert state == "COMPLETED", (state, result.output())
            if attempt != "resume":
                run_ids.append(run_id)
            pods.append(pod)
        # Task results (the resume cache) live on the store, not in a pod's home: every
        # task of the resumed run was served from the first pod's results.
        resumed = client.read_task_runs(flow_run_ids[-1])
        assert resumed, "the resumed flow run has no task runs"
        assert {t["state"]["name"] for t in resumed} == {"Cached"}, [
            (t["name"], t["state"]["name"]) for t in resumed
        ]

    first, second = (read_run_record(config.storage.runs_root, r) for r in run_ids)
    assert first.status == second.status == "success"
    assert first.prediction_hash and first.prediction_hash == second.prediction_hash
    registered = [
        {r.step: r for r in read_step_records(config.storage.runs_root, run_id)}["register"]
        for run_id in run_ids
    ]
    made, found = (r.metadata["registration"] for r in registered)
    # The second pod read the registry the first wrote on the store: no second version.
    assert not made["already_registered"] and found["already_registered"], (made, found)
    assert found["version"] == made["version"]
    assert records_written_to_store(config.storage.runs_root, run_ids)
    for pod in pods:  # the run's storage never resolved into a pod's home
        assert storage_left_in(node, pod, config.storage, artifact_root) == []


def records_written_to_store(runs_root: str, run_ids: list[str]) -> bool:
    return all(storage.exists(run_record_location(runs_root, run_id)) for run_id in run_ids)
