"""Both committed stacks, run end to end under mocks."""

from __future__ import annotations

import pytest

from tests.infra.mocking import RELEASE, transitive_dependencies

DIRECTORY = "kubernetes:kustomize/v2:Directory"


def test_every_system_is_one_component(stack_run):
    components = {d.typ for d in stack_run.mocks.declared if d.typ.startswith("orchbench:")}
    expected = {
        "orchbench:infra:Cluster",
        "orchbench:infra:SharedMlImages",
        "orchbench:infra:ArtifactStore",
        "orchbench:infra:Airflow",
        "orchbench:infra:Prefect",
        "orchbench:infra:Kubeflow",
    }
    assert expected <= components


def test_kind_stack_creates_the_cluster_and_loads_every_image(kind_run):
    commands = {d.name: d.inputs["create"] for d in kind_run.mocks.of_type("command:local:Command")}
    assert "kind create cluster --name orchbench" in commands["cluster-kind"]
    for extra in ("airflow", "prefect", "kubeflow"):
        assert commands[f"shared-ml-kind-load-{extra}"] == (
            f"kind load docker-image orchbench/shared-ml:0.1.0-{extra} --name orchbench"
        )
        assert f"--build-arg EXTRA={extra}" in commands[f"shared-ml-build-{extra}"]


def test_eks_stack_has_a_cluster_and_a_bucket_and_no_local_commands(stack_runs):
    run = stack_runs["eks"]
    assert run.mocks.of_type("command:local:Command") == []
    assert len(run.mocks.of_type("eks:index:Cluster")) == 1
    assert len(run.mocks.of_type("aws:s3/bucket:Bucket")) == 1
    assert run.mocks.of_type("kubernetes:apps/v1:Deployment") == []  # no SeaweedFS on EKS
    assert run.resolved["artifactStore"]["artifactRoot"] == "s3://orchbench-artifacts-abc123"


@pytest.mark.parametrize("release", ["airflow", "prefect-server", "prefect-worker"])
def test_charts_wait_for_images_and_artifact_store_on_kind(kind_run, release):
    waits_for = transitive_dependencies(kind_run.mocks, release, RELEASE)
    assert {"cluster-kind", "shared-ml-kind-load-airflow", "storage-seaweedfs"} <= waits_for


def test_kfp_platform_waits_for_cluster_scoped_resources(stack_run):
    waits_for = transitive_dependencies(stack_run.mocks, "kubeflow-platform-agnostic", DIRECTORY)
    assert "kubeflow-cluster-scoped" in waits_for


def test_exports_have_endpoints_and_port_forward_commands(stack_run):
    out = stack_run.resolved
    assert out["airflow"]["portForward"] == (
        "kubectl -n airflow port-forward svc/airflow-api-server 8080:8080"
    )
    assert out["prefect"]["portForward"] == (
        "kubectl -n prefect port-forward svc/prefect-server 4200:4200"
    )
    assert out["kubeflow"]["portForward"] == (
        "kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8081:80"
    )
    assert out["prefect"]["url"] == "http://prefect-server.prefect.svc.cluster.local:4200/api"
    assert out["images"]["prefect"].endswith("orchbench/shared-ml:0.1.0-prefect")
    assert set(out["footprint"]) >= {"airflow", "prefect", "kubeflow"}


def test_eks_kubeconfig_is_exported_as_a_secret(stack_runs):
    import pulumi

    exports = stack_runs["eks"].exports
    assert isinstance(exports["kubeconfig"], pulumi.Output)
    assert "kubeconfig" not in stack_runs["kind"].exports


def test_systems_can_be_switched_off():
    from tests.infra.mocking import run_stack

    run = run_stack(
        "kind",
        {
            "orchbench:cluster": {"provider": "kind"},
            "orchbench:airflow": {"enabled": False},
            "orchbench:kubeflow": {"enabled": False},
            "orchbench:storage": {"enabled": False},
        },
    )
    releases = {d.name for d in run.mocks.of_type(RELEASE)}
    assert releases == {"prefect-server", "prefect-worker"}
    assert run.mocks.of_type(DIRECTORY) == []
    assert set(run.resolved["images"]) == {"prefect"}
    assert "airflow" not in run.resolved and "artifactStore" not in run.resolved
    # Without the artifact store the tool namespaces still get the (empty) settings Secret.
    secret = run.mocks.named("prefect-artifact-store").inputs
    assert secret["metadata"]["name"] == "orchbench-artifacts"


def test_pulumi_project_uses_the_repo_environment():
    import yaml

    from infra.config import PROJECT
    from tests.infra.mocking import INFRA_DIR, REPO_ROOT

    project = yaml.safe_load((INFRA_DIR / "Pulumi.yaml").read_text())
    assert project["name"] == PROJECT  # stack keys are `orchbench:*`
    options = project["runtime"]["options"]
    assert project["runtime"]["name"] == "python"
    assert (INFRA_DIR / options["virtualenv"]).resolve() == REPO_ROOT / ".venvs" / "infra"
    for stack in ("kind", "eks"):
        keys = yaml.safe_load((INFRA_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert all(key.startswith(f"{PROJECT}:") for key in keys)
