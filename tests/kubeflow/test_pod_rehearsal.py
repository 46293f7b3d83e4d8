"""Pod rehearsal, KFP: two step pods of the committed IR, ``ingest`` then ``validate``, each
its executor's exact command as the launcher runs it, on this machine (tests/rehearsal_support.py).

Each step pod here:

- runs the IR executor's ``command`` + ``args`` with ``{{$}}`` replaced by the executor input
  (built and substituted by kfp.local's own code, as the KFP launcher does on a cluster), so
  the process is ``sh -ec '<the IR's script>' '<the component's source>' --executor_input
  <json> --function_to_execute <step>``;
- gets the IR's container env and the artifact store's Secret mapped through the IR's
  Kubernetes platform config (``secretAsEnv``), the image's ENV (Dockerfile) and its
  ``WORKDIR``, as uid 50000 with the code read-only and a fresh home;
- writes its output artifacts under the launcher's scratch folder (``/minio``, an emptyDir
  the 2.17 argo compiler mounts: backend/src/v2/compiler/argocompiler/container.go).

Between the pods, this test plays the launcher's part: it uploads the first pod's output
artifact to a pipeline root on the same S3 server and downloads it into the next pod's
scratch folder. So the pods share nothing but the object store. Not rehearsed: the driver
(input resolution from MLMD, caching, the pod spec patch), the launcher binary itself,
Argo, MLMD (docs/rehearsal.md).
"""

from __future__ import annotations

import copy
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import s3fs
import yaml
from google.protobuf import json_format
from kfp import dsl
from kfp.local import executor_input_utils, executor_output_utils, placeholder_utils
from kfp.pipeline_spec import pipeline_spec_pb2

from pipelines.kubeflow.deploy import cluster_config_json, run_parameters
from shared_ml.artifacts import ArtifactStore, content_digest
from shared_ml.config import validate_config
from shared_ml.records import read_step_records
from tests.rehearsal_support import (
    POD_GID,
    POD_UID,
    REPO_ROOT,
    Node,
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

IR_PATH = REPO_ROOT / "pipelines" / "kubeflow" / "orchbench_ml.yaml"
CONFIG = REPO_ROOT / "configs" / "bench-pipeline.yaml"
LAUNCHER_SCRATCH = "/minio"  # where the launcher keeps artifacts of the default pipeline root
CHANNEL = "pipelinechannel--"  # the exit handler's DAG passes the root's inputs under this prefix


class CompiledPipeline:
    """The committed IR: the pipeline spec and the Kubernetes platform spec."""

    def __init__(self, path: Path) -> None:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        self.spec = documents[0]
        platforms = documents[1]["platforms"] if len(documents) > 1 else {}
        self.executors_k8s = platforms.get("kubernetes", {}).get("deploymentSpec", {})
        self.executors_k8s = self.executors_k8s.get("executors", {})

    def task(self, name: str) -> dict[str, Any]:
        for component in self.spec["components"].values():
            tasks = component.get("dag", {}).get("tasks", {})
            if name in tasks:
                return tasks[name]
        raise RehearsalError(f"{IR_PATH}: no task {name!r}")

    def component(self, task: dict[str, Any]) -> pipeline_spec_pb2.ComponentSpec:
        data = self.spec["components"][task["componentRef"]["name"]]
        return json_format.ParseDict(data, pipeline_spec_pb2.ComponentSpec())

    def container(self, component: pipeline_spec_pb2.ComponentSpec) -> dict[str, Any]:
        return self.spec["deploymentSpec"]["executors"][component.executor_label]["container"]

    def secret_env(self, label: str, secrets: dict[str, dict[str, str]]) -> dict[str, str]:
        """The variables ``secretAsEnv`` gives the executor's container, from ``secrets``
        (name -> data); a missing Secret or key fails unless marked optional, as the pod
        would fail to start."""
        env = {}
        for entry in self.executors_k8s.get(label, {}).get("secretAsEnv", []):
            data = secrets.get(entry["secretName"])
            for mapping in entry["keyToEnv"]:
                if data is not None and mapping["secretKey"] in data:
                    env[mapping["envVar"]] = data[mapping["secretKey"]]
                elif not entry.get("optional", False):
                    raise RehearsalError(
                        f"{label}: Secret {entry['secretName']!r} key {mapping['secretKey']!r} "
                        "is required by the IR and missing"
                    )
        return env


def task_arguments(task: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """The task's parameters as the driver resolves them from the run's parameters."""
    arguments = {}
    for name, source in task["inputs"].get("parameters", {}).items():
        channel = source.get("componentInputParameter", "")
        if not channel.startswith(CHANNEL) and channel not in root:
            raise RehearsalError(f"task parameter {name!r}: unsupported source {source}")
        arguments[name] = root[channel.removeprefix(CHANNEL)]
    return arguments


@pytest.fixture
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    built = Node(tmp_path_factory.mktemp("kfp-node"), Path(sys.prefix), image_layout("kubeflow"))
    yield built
    built.close()


def run_step_pod(
    node: Node,
    ir: CompiledPipeline,
    name: str,
    root_parameters: dict[str, Any],
    secret: dict[str, str],
    upstream: dict[str, tuple[str, dsl.Artifact]],
) -> tuple[Any, dict[str, Any], Any]:
    """One step pod: (its result, its output artifacts, the pod). ``upstream`` maps an
    input artifact to where the launcher finds it (the pipeline root) and what it is."""
    task = ir.task(name)
    component = ir.component(task)
    pod = node.new_pod(name, writable=[LAUNCHER_SCRATCH])
    scratch = pod.place(LAUNCHER_SCRATCH) / "mlpipeline" / "v2" / "artifacts"
    task_root = scratch / name
    inputs = {key: handed_in(*given, scratch / "inputs") for key, given in upstream.items()}
    node.hand_over(pod.place(LAUNCHER_SCRATCH))
    executor_input = executor_input_utils.construct_executor_input(
        component_spec=component,
        arguments={**task_arguments(task, root_parameters), **inputs},
        task_root=str(task_root),
        block_input_artifact=False,
    )
    executor_input.outputs.output_file = str(pod.place("/tmp") / "kfp_outputs" / "output.json")
    container = ir.container(component)
    command = placeholder_utils.replace_placeholders(
        full_command=[*container["command"], *container["args"]],
        executor_input_dict=executor_input_utils.executor_input_to_dict(executor_input, component),
        pipeline_resource_name="orchbench-ml-rehearsal",
        task_resource_name=name,
        pipeline_root="s3://rehearsal-pipeline-root",
        unique_pipeline_id=placeholder_utils.make_random_id(),
    )
    spec_env = {item["name"]: item["value"] for item in container.get("env", [])}
    from_secret = ir.secret_env(component.executor_label, {"orchbench-artifacts": secret})
    env = container_env(node, pod, spec_env, from_secret)
    result = run_container(node, pod, command, env, node.layout.workdir)
    outputs = {}
    if result.returncode == 0:
        outputs = executor_output_utils.get_outputs_for_task(executor_input, component)
    return result, outputs, pod


def handed_on(artifact: dsl.Artifact, pipeline_root: str) -> str:
    """The launcher's upload: the output artifact's file to the pipeline root (S3)."""
    remote = f"{pipeline_root}/{uuid.uuid4().hex}/{artifact.name}"
    s3fs.S3FileSystem().put_file(artifact.path, remote)
    return remote


def handed_in(remote: str, artifact: dsl.Artifact, folder: Path) -> dsl.Artifact:
    """The launcher's download into the consuming pod's scratch folder."""
    local = folder / artifact.name
    local.parent.mkdir(parents=True, exist_ok=True)
    s3fs.S3FileSystem().get_file(remote, str(local))
    given = copy.copy(artifact)
    given.uri = str(local)
    return given


def test_ingest_then_validate_as_kfp_step_pods(
    node: Node, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"kfp-rehearsal-{uuid.uuid4().hex[:8]}"
    use_endpoint(monkeypatch, s3_endpoint, bucket)
    secret = store_secret(s3_endpoint, bucket, CREDENTIALS)
    ir = CompiledPipeline(IR_PATH)
    run_id = f"kfp-rehearsal-{uuid.uuid4().hex[:8]}"
    config_json = cluster_config_json(CONFIG)
    assert runner_paths_in(config_json, extra=(node.root,)) == []
    root_parameters = run_parameters(config_json, run_id, 42, "", "2026-01-05")

    probe_pod = node.new_pod("probe", writable=[])
    identity = probe_identity(
        node, probe_pod, container_env(node, probe_pod, {}, {}), node.layout.workdir
    )
    assert identity["uid"] != 0 and not identity["code_writable"] and identity["home_writable"]
    assert identity["shared_ml"].startswith(str(node.code)), identity
    if node.user is not None:  # as root: the pods' own user, and the repository out of sight
        assert (identity["uid"], identity["gid"], identity["groups"]) == (POD_UID, POD_GID, [])
        assert not identity["repository_visible"]

    ingest, ingest_outputs, ingest_pod = run_step_pod(
        node, ir, "ingest", root_parameters, secret, {}
    )
    assert ingest.returncode == 0, ingest.output()
    dataset = ingest_outputs["dataset"]
    remote = handed_on(dataset, f"{bucket}/kfp-pipeline-root/{run_id}")
    validate, validate_outputs, validate_pod = run_step_pod(
        node, ir, "validate", root_parameters, secret, {"dataset": (remote, dataset)}
    )
    assert validate.returncode == 0, validate.output()

    # Read back from the store alone, as orchbench does through the port-forward.
    storage = validate_config(json.loads(config_json), storage_base=f"s3://{bucket}").storage
    records = {r.step: r for r in read_step_records(storage.runs_root, run_id)}
    assert sorted(records) == ["ingest", "validate"], records
    assert all(r.outcome == "success" and r.attempt == 1 for r in records.values())
    stored = records["ingest"].outputs["dataset"]
    assert stored.startswith(f"s3://{bucket}/"), stored
    # The artifact KFP handed on is the one ingest stored, byte for byte, and says so.
    handed = Path(dataset.path).read_bytes()
    assert ArtifactStore(storage.artifact_root).get_bytes(stored) == handed
    assert content_digest(handed) in json.dumps(dataset.metadata)
    assert validate_outputs["report"].metadata, validate_outputs
    for pod in (ingest_pod, validate_pod):  # the run's storage never resolved into a pod's home
        assert storage_left_in(node, pod, storage, f"s3://{bucket}") == []
