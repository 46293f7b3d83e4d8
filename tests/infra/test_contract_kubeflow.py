"""The KFP step pods' contract with the image and with infra, read from the compiled IR.

Issue 15, defect 4: the steps ran as uid 50000 with no ``ORCHBENCH_HOME``, so storage
resolved under the root-owned ``/opt/orchbench`` and the first record write failed; and
nothing gave them the artifact store. Every executor of the committed IR
(``pipelines/kubeflow/orchbench_ml.yaml``, the document the cluster runs) must now set the
image's writable home, and read the store's settings from the Secret infra creates in the
namespace KFP runs its step pods in, under keys that Secret has.
"""

from __future__ import annotations

import re

import pytest
import yaml

from infra.components.common import ARTIFACT_SECRET_NAME
from infra.config import KubeflowConfig
from pipelines.kubeflow.cluster_env import HOME_ENV, REQUIRED_STORE_KEYS
from tests.infra.mocking import REPO_ROOT, StackRun

IR_PATH = REPO_ROOT / "pipelines" / "kubeflow" / "orchbench_ml.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def ir() -> dict:
    """The pipeline spec, with the platform spec (the IR's second YAML document) merged in."""
    documents = list(yaml.safe_load_all(IR_PATH.read_text(encoding="utf-8")))
    merged: dict = {}
    for document in documents:
        merged.update(document)
    return merged


def executors(ir: dict) -> dict[str, dict]:
    return ir["deploymentSpec"]["executors"]


def store_mappings(ir: dict, executor: str) -> list[dict]:
    platform = ir.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {})
    return platform.get("executors", {}).get(executor, {}).get("secretAsEnv", [])


def dockerfile_homes() -> set[str]:
    """Every value the Dockerfile gives ORCHBENCH_HOME (one per runtime stage)."""
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    instructions = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    return set(re.findall(r"\bORCHBENCH_HOME=([^\s\\]+)", instructions))


def test_the_ir_has_a_step_executor_per_spec_step_and_the_exit_handler(ir: dict) -> None:
    # Guards the tests below against passing over an empty or renamed executor list.
    names = set(executors(ir))
    assert {"exec-ingest", "exec-train", "exec-score", "exec-notify-on-failure"} <= names


def test_every_executor_sets_the_images_writable_home(ir: dict) -> None:
    [home] = dockerfile_homes()  # one value for every image
    for name, executor in executors(ir).items():
        env = {e["name"]: e["value"] for e in executor["container"].get("env", [])}
        assert env.get(HOME_ENV) == home, f"{name}: {HOME_ENV} is not the image's home {home}"
        assert not env[HOME_ENV].startswith("/opt/orchbench"), "the code folder is read-only"


def test_every_executor_reads_the_store_from_the_secret_infra_creates(
    ir: dict, stack_run: StackRun
) -> None:
    secret = stack_run.mocks.named("kubeflow-artifact-store")
    # KFP standalone runs the step pods in its own namespace, where infra copies the Secret.
    assert secret.inputs["metadata"]["name"] == ARTIFACT_SECRET_NAME
    assert secret.inputs["metadata"]["namespace"] == KubeflowConfig().namespace
    keys_in_secret = set(secret.inputs["stringData"])
    for name in executors(ir):
        mappings = store_mappings(ir, name)
        assert mappings, f"{name}: no secretAsEnv in the IR's Kubernetes platform config"
        for mapping in mappings:
            assert mapping["secretName"] == ARTIFACT_SECRET_NAME, name
            assert mapping["secretNameParameter"]["runtimeValue"]["constant"] == (
                ARTIFACT_SECRET_NAME
            )
            mapped = {m["secretKey"] for m in mapping["keyToEnv"]}
            assert all(m["envVar"] == m["secretKey"] for m in mapping["keyToEnv"]), name
            if not mapping["optional"]:
                # A required key the Secret lacks keeps the pod from starting.
                assert mapped <= keys_in_secret, f"{name}: {mapped - keys_in_secret}"
        required = {m["secretKey"] for e in mappings if not e["optional"] for m in e["keyToEnv"]}
        assert set(REQUIRED_STORE_KEYS) <= required, f"{name}: the store's root is optional"


def test_every_key_infra_gives_the_kind_pods_reaches_the_steps(
    ir: dict, kind_run: StackRun
) -> None:
    """Nothing infra puts in the Secret is left out (an unread endpoint or key would send
    s3fs to AWS instead of the cluster's SeaweedFS)."""
    keys_in_secret = set(kind_run.mocks.named("kubeflow-artifact-store").inputs["stringData"])
    for name in executors(ir):
        mapped = {m["secretKey"] for e in store_mappings(ir, name) for m in e["keyToEnv"]}
        assert keys_in_secret <= mapped, f"{name} ignores {keys_in_secret - mapped}"
