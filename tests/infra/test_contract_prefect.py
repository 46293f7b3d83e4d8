"""Prefect on the cluster: the contract between the pipeline's work pool and infra's worker.

Issue 15, defect 5. The work pool had two names (``orchbench-kubernetes`` in the pipeline,
``orchbench-k8s`` in infra), and its job template sent flow-run Jobs to the namespace
``default``, which the worker's Role does not reach. The prefect-worker chart creates that
Role (and its RoleBinding) in ``role.namespace`` or else the release namespace
(charts/prefect-worker/templates/role.yaml and rolebinding.yaml at prefect-helm
2026.8.18172642, the pinned chart version), and its ``jobNamespace`` only picks what the
worker's observer watches, not where Jobs go (values.yaml, same tag). So: one pool name,
and Jobs in the release namespace, with the artifact store's Secret and the image's home.
"""

from __future__ import annotations

import json
import re

import yaml

from infra.components.common import ARTIFACT_SECRET_NAME
from infra.config import PrefectConfig
from pipelines.prefect.manifest import (
    ARTIFACT_SECRET,
    JOB_NAMESPACE,
    ORCHBENCH_HOME,
    POOL_NAME,
    TEMPLATE_PATH,
)
from tests.infra.mocking import INFRA_DIR, RELEASE, REPO_ROOT, StackRun


def shipped_template(run: StackRun) -> dict:
    """The base job template infra gives the worker chart (worker.config.baseJobTemplate)."""
    values = run.mocks.named("prefect-worker", RELEASE).inputs["values"]
    return json.loads(values["worker"]["config"]["baseJobTemplate"]["configuration"])


def job_container(template: dict) -> dict:
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    return container


def test_the_pipeline_and_infra_name_one_work_pool(stack_run: StackRun) -> None:
    assert PrefectConfig().work_pool == POOL_NAME
    worker = stack_run.mocks.named("prefect-worker", RELEASE).inputs["values"]["worker"]
    assert worker["config"]["workPool"] == POOL_NAME
    assert worker["config"]["type"] == "kubernetes"
    assert stack_run.exports["prefect"]["workPool"] == POOL_NAME


def test_no_stack_file_renames_the_work_pool() -> None:
    for stack_file in sorted(INFRA_DIR.glob("Pulumi.*.yaml")):
        prefect = (
            (yaml.safe_load(stack_file.read_text()) or {})
            .get("config", {})
            .get("orchbench:prefect", {})
        )
        assert "workPool" not in prefect, f"{stack_file.name} overrides the work pool name"


def test_flow_run_jobs_go_where_the_workers_role_reaches(stack_run: StackRun) -> None:
    release = stack_run.mocks.named("prefect-worker", RELEASE).inputs
    values = release["values"]
    # The chart's Role and RoleBinding: in the release namespace, since we set no other.
    assert values["role"]["create"] is True and values["rolebinding"]["create"] is True
    assert "namespace" not in values["role"]
    template = shipped_template(stack_run)
    namespace = template["variables"]["properties"]["namespace"]["default"]
    assert namespace == release["namespace"] != "default"
    # The committed template (used when the adapter has to create the pool) agrees.
    committed = json.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))
    assert committed["variables"]["properties"]["namespace"]["default"] == JOB_NAMESPACE
    assert PrefectConfig().namespace == JOB_NAMESPACE


def test_flow_run_jobs_read_the_store_from_the_secret_infra_creates(stack_run: StackRun) -> None:
    assert ARTIFACT_SECRET == ARTIFACT_SECRET_NAME
    secret = stack_run.mocks.named("prefect-artifact-store").inputs["metadata"]
    namespace = stack_run.mocks.named("prefect-worker", RELEASE).inputs["namespace"]
    assert (secret["name"], secret["namespace"]) == (ARTIFACT_SECRET_NAME, namespace)
    container = job_container(shipped_template(stack_run))
    assert {"secretRef": {"name": ARTIFACT_SECRET_NAME}} in container["envFrom"]


def test_flow_run_jobs_run_the_stack_image_with_its_writable_home(stack_run: StackRun) -> None:
    template = shipped_template(stack_run)
    properties = template["variables"]["properties"]
    assert properties["image"]["default"] == stack_run.resolved["images"]["prefect"]
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    instructions = "\n".join(
        line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")
    )
    assert set(re.findall(r"\bORCHBENCH_HOME=([^\s\\]+)", instructions)) == {ORCHBENCH_HOME}
    assert properties["env"]["default"]["ORCHBENCH_HOME"] == ORCHBENCH_HOME
