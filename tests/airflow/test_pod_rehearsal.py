"""Pod rehearsal, Airflow: two KubernetesExecutor task pods, ``ingest`` then ``validate``,
each the exact pod the executor would create, run on this machine (tests/rehearsal_support.py).

The control plane is real and local: a SQLite metadata DB, a real ``airflow api-server``
(the task SDK's execution API, which every task pod calls), the DAG serialized from the
image's copy of the DAGs folder, and the run triggered through the REST API with the
config by value (``benchmarks.tools.airflow.cluster.cluster_conf``, what ``--target
cluster`` sends). In place of the scheduler, a control process makes the scheduler's
decisions with its own code (``DagRun.task_instance_scheduling_decisions``,
``schedule_tis``, ``ExecuteTask.make`` with the executor's JWT generator), and the
cncf-kubernetes provider builds the pod (``KubernetesExecutor._process_workloads`` ->
``AirflowKubernetesScheduler._build_pod_request``: ``pipelines/airflow/pod_template.yaml``,
the step's ``pod_override``, the workload as ``python -m
airflow.sdk.execution_time.execute_workload --json-string ...``). The kube API is not
called: the pod's container is run here instead, with its args, env, ``envFrom`` Secret,
working directory and emptyDirs, as uid 50000, the code read-only, a fresh home, storage on
moto's S3 on 127.0.0.1.

Not rehearsed (docs/rehearsal.md): the image's ``/entrypoint`` (it checks the metadata DB
before it execs ``python``), the chart's ConfigMap (its ``airflow.cfg`` is replaced by the
one setting a task needs, the execution API's URL), the scheduler's loop and the kube API.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.tools.airflow.client import AirflowClient
from benchmarks.tools.airflow.cluster import cluster_conf
from benchmarks.tools.airflow.services import ServiceSettings, airflow_env, free_port
from benchmarks.tools.cluster import cluster_config
from pipelines.airflow.tasks import records_run_id
from shared_ml import storage
from shared_ml.records import read_step_records
from tests.rehearsal_support import (
    POD_GID,
    POD_UID,
    REPO_ROOT,
    Node,
    Pod,
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

ML_DAG = "orchbench_ml"
CONFIG = REPO_ROOT / "configs" / "bench-pipeline.yaml"
POD_TEMPLATE = REPO_ROOT / "pipelines" / "airflow" / "pod_template.yaml"
RELEASE = "airflow"  # infra's Helm release name (infra/components/airflow.py)

# The control plane's scheduler part, one "<dag> <run> <task>" line of stdin at a time: the
# scheduler's own decisions for that task, then the pod the provider builds for it (JSON).
CONTROL = """
import argparse, json, queue, sys
from datetime import datetime, timezone

def emit(kind, value):  # Airflow logs to stdout too: replies are the lines marked so
    print("@rehearsal " + kind + " " + json.dumps(value, default=str), flush=True)

from airflow.utils import db
db.upgradedb()
emit("MIGRATED", {})  # the api-server may start meanwhile
from airflow.cli.commands.dag_command import dag_reserialize
dag_reserialize(argparse.Namespace(bundle_name=None))
emit("READY", {})

from kubernetes.client import ApiClient
from sqlalchemy import select
from airflow.executors import workloads
from airflow.models.dagbag import DBDagBag
from airflow.models.dagrun import DagRun
from airflow.providers.cncf.kubernetes.executors.kubernetes_executor import KubernetesExecutor
from airflow.providers.cncf.kubernetes.executors.kubernetes_executor_utils import (
    AirflowKubernetesScheduler,
)
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState

executor = KubernetesExecutor()
executor.task_queue = queue.Queue()  # start() would make a Manager queue and a kube client
builder = AirflowKubernetesScheduler.__new__(AirflowKubernetesScheduler)  # no watchers
builder.kube_config = executor.kube_config
builder.namespace = executor.kube_config.kube_namespace
builder.scheduler_job_id = "rehearsal"
builder.supports_task_instance_uuid = executor.supports_task_instance_uuid

for line in sys.stdin:
    dag_id, run_id, task_id = line.split()
    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run.state != DagRunState.RUNNING:
            run.state = DagRunState.RUNNING
            run.start_date = datetime.now(timezone.utc)
        run.dag = DBDagBag().get_dag_for_run(run, session=session)
        decision = run.task_instance_scheduling_decisions(session=session)
        ready = [ti for ti in decision.schedulable_tis if ti.task_id == task_id]
        if not ready:
            emit("NOT_SCHEDULABLE", {ti.task_id: ti.state for ti in decision.tis})
            continue
        run.schedule_tis(ready, session=session)
        ti = ready[0]
        ti.state = TaskInstanceState.QUEUED
        ti.queued_dttm = datetime.now(timezone.utc)
        session.commit()
        session.refresh(ti)
        workload = workloads.ExecuteTask.make(ti, generator=executor.jwt_generator)
    executor.queue_workload(workload, session=None)
    executor._process_workloads([workload])
    pod = builder._build_pod_request(executor.task_queue.get_nowait())
    emit("POD", ApiClient().sanitize_for_serialization(pod))
"""


def chart_rendered_template(target: Path) -> Path:
    """The pod template as the chart renders it (``tpl`` over ``podTemplate``): its chart
    helpers become names; which names the chart picks is tests/airflow/test_pod_template.py's."""
    text = POD_TEMPLATE.read_text(encoding="utf-8")
    text = re.sub(r"\{\{\s*include \"(\w+)\" \.\s*\}\}", rf"{RELEASE}-rehearsal-\1", text)
    target.write_text(text, encoding="utf-8")
    return target


@dataclass
class ControlPlane:
    env: dict[str, str]
    url: str
    home: Path
    control: subprocess.Popen[str]

    def pod_for(self, run_id: str, task_id: str) -> dict[str, Any]:
        """Schedule and queue ``task_id`` as the scheduler would, and the pod built for it."""
        assert self.control.stdin and self.control.stdout
        self.control.stdin.write(f"{ML_DAG} {run_id} {task_id}\n")
        self.control.stdin.flush()
        kind, payload = _reply(self.control, self.home / "control.log")
        assert kind == "POD", f"{task_id}: {kind} {payload}"
        return json.loads(payload)


def _reply(control: subprocess.Popen[str], log: Path) -> tuple[str, str]:
    """The control process's next reply (its other output is Airflow's logging)."""
    assert control.stdout
    for line in control.stdout:
        if line.startswith("@rehearsal "):
            kind, _, payload = line.removeprefix("@rehearsal ").partition(" ")
            return kind, payload
    raise AssertionError(f"the control process ended: {log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    built = Node(tmp_path_factory.mktemp("af-node"), Path(sys.prefix), image_layout("airflow"))
    yield built
    built.close()


@pytest.fixture
def control_plane(node: Node, tmp_path: Path) -> Iterator[ControlPlane]:
    home = tmp_path / "control"
    home.mkdir()
    settings = ServiceSettings(
        home=home, port=free_port(), dags_folder=node.code / "pipelines" / "airflow"
    )
    env = airflow_env(settings)
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "KubernetesExecutor",
            "AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE": str(
                chart_rendered_template(tmp_path / "pod_template.yaml")
            ),
        }
    )
    log = (home / "control.log").open("w")
    control = subprocess.Popen(
        [sys.executable, "-c", CONTROL],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        bufsize=1,
        text=True,
        start_new_session=True,
    )
    api = None
    try:
        assert _reply(control, home / "control.log")[0] == "MIGRATED"
        api_log = (home / "api-server.log").open("w")
        api = subprocess.Popen(
            [
                str(Path(sys.prefix) / "bin" / "airflow"),
                "api-server",
                "--host",
                "127.0.0.1",
                "--port",
                str(settings.port),
            ],
            env=env,
            stdout=api_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{settings.url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            assert api.poll() is None and time.monotonic() < deadline, (
                home / "api-server.log"
            ).read_text()[-3000:]
            time.sleep(0.5)
        assert _reply(control, home / "control.log")[0] == "READY"  # the DAG is serialized
        yield ControlPlane(env, settings.url, home, control)
    finally:
        if control.stdin:
            control.stdin.close()
        for process in (control, api):
            if process is not None:
                _stop(process)
        log.close()


def task_pod(
    node: Node, spec: dict[str, Any], secret: dict[str, str], api_url: str
) -> tuple[Pod, Any]:
    """Run the built pod's one container here; (the pod, its result)."""
    containers = spec["spec"]["containers"]
    assert len(containers) == 1, "the rehearsal runs single-container task pods"
    container = containers[0]
    volumes = {v["name"]: v for v in spec["spec"].get("volumes", [])}
    writable, config_file = [], None
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            writable.append(mount["mountPath"])
        elif "configMap" in volume and mount.get("subPath") == "airflow.cfg":
            config_file = mount["mountPath"]
    pod = node.new_pod(spec["metadata"]["labels"]["task_id"], writable=writable)
    if config_file:  # the chart's ConfigMap, reduced to the one setting a task needs
        cfg = Path(pod.translate(config_file, "airflow.cfg mount"))
        cfg.write_text(f"[core]\nexecution_api_server_url = {api_url}/execution/\n")
        cfg.chmod(0o444)
    env_from = {}
    for source in container.get("envFrom", []):
        name = source.get("secretRef", {}).get("name")
        assert name == "orchbench-artifacts", f"envFrom {source}: only the artifact store's Secret"
        env_from.update(secret)
    spec_env = {item["name"]: item["value"] for item in container.get("env", [])}
    env = container_env(node, pod, spec_env, env_from)
    read_only = container.get("securityContext", {}).get("readOnlyRootFilesystem", False)
    result = run_container(
        node, pod, container["args"], env, container["workingDir"], read_only_root=read_only
    )
    return pod, result


def test_ingest_then_validate_as_kubernetes_executor_pods(
    node: Node, control_plane: ControlPlane, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"af-rehearsal-{uuid.uuid4().hex[:8]}"
    artifact_root = use_endpoint(monkeypatch, s3_endpoint, bucket)
    monkeypatch.setenv(storage.ARTIFACT_ROOT_ENV, artifact_root)
    secret = store_secret(s3_endpoint, bucket, CREDENTIALS)
    config = cluster_config(CONFIG, seed=None)
    conf = cluster_conf(config)
    assert runner_paths_in(conf, extra=(node.root,)) == []
    run_id = f"rehearsal-{uuid.uuid4().hex[:8]}"
    with AirflowClient(control_plane.url, airflow_home=control_plane.home, timeout_s=60) as client:
        client.trigger(ML_DAG, run_id=run_id, conf=conf)

        probe = node.new_pod("probe", writable=[])
        probe_env = container_env(node, probe, {}, {})
        identity = probe_identity(node, probe, probe_env, node.layout.workdir, read_only_root=True)
        assert identity["uid"] != 0 and not identity["code_writable"] and identity["home_writable"]
        assert identity["shared_ml"].startswith(str(node.code)), identity
        if node.user is not None:
            assert (identity["uid"], identity["gid"], identity["groups"]) == (POD_UID, POD_GID, [])
            assert not identity["repository_visible"]
            assert not identity["root_writable"]  # the pod template's readOnlyRootFilesystem

        pods = {}
        for task_id in ("ingest", "validate"):
            spec = control_plane.pod_for(run_id, task_id)
            args = spec["spec"]["containers"][0]["args"]
            assert args[:4] == [
                "python",
                "-m",
                "airflow.sdk.execution_time.execute_workload",
                "--json-string",
            ]
            pod, result = task_pod(node, spec, secret, control_plane.url)
            # The pod exits 0 whatever the task did: its outcome is the TI state it reported.
            states = {ti["task_id"]: ti["state"] for ti in client.task_instances(ML_DAG, run_id)}
            assert (result.returncode, states[task_id]) == (0, "success"), result.output()
            pods[task_id] = pod

    records = {
        r.step: r for r in read_step_records(config.storage.runs_root, records_run_id(run_id))
    }
    assert sorted(records) == ["ingest", "validate"], records
    assert all(r.outcome == "success" and r.attempt == 1 for r in records.values())
    dataset = records["ingest"].outputs["dataset"]
    assert dataset.startswith(f"{artifact_root}/") and storage.exists(dataset), dataset
    for pod in pods.values():  # the run's storage never resolved into a pod's home
        assert storage_left_in(node, pod, config.storage, artifact_root) == []
