"""infra.footprint sums exactly the resources the program hands to the charts and manifests."""

from __future__ import annotations

import json
import subprocess
import sys

from infra.components.airflow import airflow_values
from infra.components.prefect import server_values, worker_values
from infra.components.storage import seaweedfs_deployment
from infra.config import cpu_millis, memory_mib, parse_stack_config
from infra.footprint import PodFootprint, footprint, footprint_for_stack
from tests.infra.mocking import REPO_ROOT
from tests.infra.test_invariants import walk


def as_footprint(component: str, resources: dict, per_task: bool = False) -> PodFootprint:
    return PodFootprint(
        component=component,
        replicas=1,
        cpu_request_millis=cpu_millis(resources["requests"]["cpu"]),
        memory_request_mib=memory_mib(resources["requests"]["memory"]),
        cpu_limit_millis=cpu_millis(resources["limits"]["cpu"]),
        memory_limit_mib=memory_mib(resources["limits"]["memory"]),
        per_task=per_task,
    )


def resource_paths(values: dict) -> set[str]:
    return {path for path, key, _ in walk(values) if key == "resources"}


def test_airflow_footprint_is_the_chart_values():
    config = parse_stack_config(
        {"orchbench:cluster": {"provider": "kind"}, "orchbench:airflow": {"triggerer": True}}
    )
    values = airflow_values(config.airflow, config.image)
    mapping = {
        "apiServer.resources": ("api-server", False),
        "scheduler.resources": ("scheduler", False),
        "dagProcessor.resources": ("dag-processor", False),
        "triggerer.resources": ("triggerer", False),
        "postgresql.primary.resources": ("postgresql", False),
        "workers.kubernetes.resources": ("task-pod", True),
        "migrateDatabaseJob.resources": ("migrate-database-job", True),
    }
    # A new sized component in the values must be added to the footprint (and this map).
    assert resource_paths(values) == set(mapping)
    expected = []
    for path, (component, per_task) in mapping.items():
        node = values
        for part in path.split("."):
            node = node[part]
        expected.append(as_footprint(component, node, per_task))
    assert sorted(footprint(config)["airflow"].components, key=str) == sorted(expected, key=str)


def test_prefect_footprint_is_the_chart_values():
    config = parse_stack_config({"orchbench:cluster": {"provider": "kind"}})
    server, worker = server_values(config.prefect), worker_values(config.prefect, config.image)
    assert resource_paths(server) == {"server.resources", "postgresql.primary.resources"}
    assert resource_paths(worker) == {"worker.resources", "worker.initContainer.resources"}
    # The init container runs before the worker with the same size: the pod asks for one.
    assert worker["worker"]["initContainer"]["resources"] == worker["worker"]["resources"]
    components = {c.component: c for c in footprint(config)["prefect"].components}
    assert components["server"] == as_footprint("server", server["server"]["resources"])
    assert components["worker"] == as_footprint("worker", worker["worker"]["resources"])
    assert components["postgresql"] == as_footprint(
        "postgresql", server["postgresql"]["primary"]["resources"]
    )


def test_storage_footprint_is_the_deployment():
    config = parse_stack_config({"orchbench:cluster": {"provider": "kind"}})
    container = seaweedfs_deployment(config.storage)["spec"]["template"]["spec"]["containers"][0]
    assert footprint(config)["storage"].components == [
        as_footprint("seaweedfs", container["resources"])
    ]


def test_kind_stack_totals():
    systems = footprint_for_stack("kind")
    airflow = systems["airflow"]
    assert (airflow.pods, airflow.cpu_request_millis, airflow.memory_request_mib) == (4, 350, 1664)
    assert (airflow.cpu_limit_millis, airflow.memory_limit_mib) == (3000, 3328)
    prefect = systems["prefect"]
    assert (prefect.pods, prefect.cpu_request_millis, prefect.memory_request_mib) == (3, 200, 1024)
    kubeflow = systems["kubeflow"]
    # 14 upstream Deployments; 7 unsized containers get the LimitRange's 50m/64Mi request
    # and every container without a limit gets 500m/1Gi.
    assert (kubeflow.pods, kubeflow.cpu_request_millis, kubeflow.memory_request_mib) == (
        14,
        1024,
        3574,
    )
    assert (kubeflow.cpu_limit_millis, kubeflow.memory_limit_mib) == (7000, 14336)
    # JSON-able for the benchmark report.
    assert (
        json.loads(json.dumps({k: v.to_dict() for k, v in systems.items()}))["prefect"]["totals"][
            "memory_limit_mib"
        ]
        == 2048
    )


def test_disabled_systems_and_eks_storage_cost_nothing():
    config = parse_stack_config(
        {"orchbench:cluster": {"provider": "eks"}, "orchbench:prefect": {"enabled": False}}
    )
    assert set(footprint(config)) == {"airflow", "kubeflow"}


def test_footprint_does_not_need_pulumi():
    """The benchmark harness imports it from the core environment, which has no Pulumi."""
    code = "import sys, infra.footprint; assert 'pulumi' not in sys.modules, 'pulumi imported'"
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_unknown_kfp_version_is_reported_as_not_declared():
    config = parse_stack_config(
        {"orchbench:cluster": {"provider": "kind"}, "orchbench:kubeflow": {"version": "2.16.0"}}
    )
    kubeflow = footprint(config)["kubeflow"]
    assert kubeflow.declared is False and kubeflow.pods is None
    assert "measure on the cluster" in kubeflow.note


def test_docs_show_the_computed_footprint():
    from infra.footprint import markdown_table

    docs = (REPO_ROOT / "docs" / "infra.md").read_text()
    assert markdown_table(footprint_for_stack("kind")) in docs
    assert markdown_table(footprint_for_stack("eks")) in docs


def test_cli_prints_json_for_the_harness():
    result = subprocess.run(
        [sys.executable, "-m", "infra.footprint", "--stack", "kind"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(result.stdout)["airflow"]["totals"]["pods"] == 4
