"""Registering the deployments on a cluster's Prefect server (``deploy --kubernetes``).

Nothing registered them on the cluster's server before (issue 15, defect 5): the adapter's
first cluster run met a 404. Here a real, temporary Prefect server (Prefect's own test
harness, SQLite) stands in for the cluster's: the registration must create the Kubernetes
pool from the committed template only when it is missing, leave an existing pool's template
(the one infra's worker chart syncs) alone, refuse a pool of another type, and put both
deployments on that pool with job variables that keep the template's namespace, home and
artifact-store Secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pipelines.prefect.deploy import deploy_pipeline, deploy_workload, ensure_pool
from pipelines.prefect.manifest import (
    ARTIFACT_SECRET,
    JOB_NAMESPACE,
    ORCHBENCH_HOME,
    POOL_NAME,
    TEMPLATE_PATH,
    rendered_job_manifest,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(REPO_ROOT / "configs" / "default.yaml")


@pytest.fixture(scope="module")
def server() -> Iterator[None]:
    """One temporary Prefect server for this module (Prefect's test harness)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def read_pool(name: str):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_work_pool(name)


def read_deployment(name: str):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(name)


def test_kubernetes_registration_creates_the_pool_and_both_deployments_once(server) -> None:
    committed = json.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))
    first = deploy_pipeline(CONFIG, POOL_NAME, pool_type="kubernetes")
    workload = deploy_workload(POOL_NAME, pool_type="kubernetes")

    pool = read_pool(POOL_NAME)
    assert pool.type == "kubernetes"
    assert pool.base_job_template == committed
    ml = read_deployment("orchbench-ml/orchbench-ml")
    assert (str(ml.id), ml.work_pool_name) == (first, POOL_NAME)
    assert read_deployment("orchbench-workload/orchbench-workload").work_pool_name == POOL_NAME
    # The config travels by value, as written: no path of this machine for the pod to miss.
    assert ml.parameters["config"] == yaml.safe_load(Path(CONFIG).read_text(encoding="utf-8"))
    assert str(REPO_ROOT) not in json.dumps(ml.parameters)

    # Idempotent: the same deployments, updated in place; the pool is not created again.
    assert deploy_pipeline(CONFIG, POOL_NAME, pool_type="kubernetes") == first
    assert deploy_workload(POOL_NAME, pool_type="kubernetes") == workload
    assert ensure_pool(POOL_NAME, "kubernetes") is False

    # What the worker would submit for a run of this deployment: the deployment's job
    # variables merged over the template's, as prefect-kubernetes merges them.
    job = rendered_job_manifest(committed, ml.job_variables)
    assert job["metadata"]["namespace"] == JOB_NAMESPACE
    [container] = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ORCHBENCH_HOME"] == ORCHBENCH_HOME
    assert env["PREFECT_LOGGING_EXTRA_LOGGERS"] == "shared_ml"
    assert container["envFrom"] == [{"secretRef": {"name": ARTIFACT_SECRET}}]


def test_an_existing_pool_keeps_the_template_infra_gave_it(server) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    pinned = json.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))
    pinned["variables"]["properties"]["image"]["default"] = "registry.example/shared-ml:9.9.9"
    with get_client(sync_client=True) as client:
        client.create_work_pool(
            WorkPoolCreate(name="pinned-by-infra", type="kubernetes", base_job_template=pinned)
        )
    deploy_workload("pinned-by-infra", pool_type="kubernetes")
    assert read_pool("pinned-by-infra").base_job_template == pinned


def test_a_pool_of_another_type_is_refused(server) -> None:
    assert ensure_pool("local-processes", "process") is True
    with pytest.raises(ValueError, match="'local-processes' exists with type 'process'"):
        deploy_workload("local-processes", pool_type="kubernetes")
