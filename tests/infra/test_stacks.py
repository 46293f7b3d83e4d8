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


def test_eks_stack_has_a_cluster_and_a_bucket_and_only_builds_and_pushes_locally(stack_runs):
    run = stack_runs["eks"]
    commands = {d.name for d in run.mocks.of_type("command:local:Command")}
    extras = ("airflow", "prefect", "kubeflow")
    assert commands == {
        f"shared-ml-{step}-{extra}" for step in ("build", "push") for extra in extras
    }
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


# --- the kind create step --------------------------------------------------------------------

FAKE_KIND = """#!/bin/sh
# Stand-in for the kind CLI: clusters listed in $FAKE_KIND_CLUSTERS, calls logged.
echo "$*" >> "$FAKE_KIND_LOG"
case "$1 $2" in
  "get clusters") for c in $FAKE_KIND_CLUSTERS; do echo "$c"; done ;;
  "create cluster") echo "Creating cluster (kind's progress, on stdout)" ;;
  "get kubeconfig") echo "apiVersion: v1" ; echo "kind: Config" ;;
esac
"""


def run_create_step(tmp_path, existing: list[str], reuse_existing: bool):
    """Run the create step's shell, as pulumi-command does, against a fake `kind`."""
    import os
    import subprocess

    from infra.components.cluster import kind_create_command
    from infra.config import KindSettings

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    kind = bin_dir / "kind"
    kind.write_text(FAKE_KIND)
    kind.chmod(0o755)
    log = tmp_path / "kind.log"
    log.touch()
    settings = KindSettings(reuse_existing=reuse_existing)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_KIND_CLUSTERS": " ".join(existing),
        "FAKE_KIND_LOG": str(log),
    }
    script = kind_create_command(settings, tmp_path / "cluster.yaml")
    result = subprocess.run(
        ["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=30
    )
    return result, log.read_text().splitlines()


def test_kind_create_refuses_a_cluster_that_already_exists(tmp_path):
    result, calls = run_create_step(tmp_path, ["other", "orchbench"], reuse_existing=False)
    assert result.returncode == 1
    assert "kind cluster 'orchbench' already exists" in result.stderr
    assert "reuseExisting" in result.stderr and "kind delete cluster --name orchbench" in (
        result.stderr
    )
    assert not any(call.startswith("create cluster") for call in calls)
    assert result.stdout == ""  # no kubeconfig: the provider never sees a foreign cluster


def test_kind_create_makes_a_new_cluster_and_prints_only_the_kubeconfig(tmp_path):
    result, calls = run_create_step(tmp_path, ["other"], reuse_existing=False)
    assert result.returncode == 0, result.stderr
    created = [call for call in calls if call.startswith("create cluster")]
    assert len(created) == 1 and "--name orchbench" in created[0] and "--wait 180s" in created[0]
    assert result.stdout == "apiVersion: v1\nkind: Config\n"
    assert "Creating cluster" in result.stderr


def test_kind_create_reuses_an_existing_cluster_only_when_told(tmp_path):
    result, calls = run_create_step(tmp_path, ["orchbench"], reuse_existing=True)
    assert result.returncode == 0, result.stderr
    assert not any(call.startswith("create cluster") for call in calls)
    assert result.stdout.startswith("apiVersion: v1")
    fresh, fresh_calls = run_create_step(tmp_path / "fresh", [], reuse_existing=True)
    assert fresh.returncode == 0 and any(c.startswith("create cluster") for c in fresh_calls)


def test_a_reused_kind_cluster_is_not_deleted_by_destroy():
    from tests.infra.mocking import run_stack

    own = run_stack("kind", {"orchbench:cluster": {"provider": "kind"}})
    assert (
        own.mocks.named("cluster-kind").inputs["delete"] == "kind delete cluster --name orchbench"
    )
    reused = run_stack(
        "kind", {"orchbench:cluster": {"provider": "kind", "kind": {"reuseExisting": True}}}
    )
    assert "delete" not in reused.mocks.named("cluster-kind").inputs


# Default node image of each kind release (kubernetes-sigs/kind, pkg/apis/config/defaults/
# image.go at the tag; each is among the images its release notes list).
KIND_DEFAULT_NODE_IMAGES = {
    "v0.29.0": "kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f",
    "v0.30.0": "kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a",
    "v0.31.0": "kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f",
    "v0.32.0": "kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5",
}


def test_kind_node_image_is_the_one_the_pinned_kind_release_ships():
    import re

    import yaml

    from tests.infra.mocking import INFRA_DIR, KUBERNETES_VERSION, REPO_ROOT

    workflow = yaml.safe_load((REPO_ROOT / ".github/workflows/e2e-kind.yml").read_text())
    kind_version = workflow["env"]["KIND_VERSION"]
    assert kind_version in KIND_DEFAULT_NODE_IMAGES, (
        f"e2e-kind.yml pins kind {kind_version}: add its default node image (from its "
        "pkg/apis/config/defaults/image.go) here and to infra/kind/cluster.yaml"
    )
    cluster = yaml.safe_load((INFRA_DIR / "kind/cluster.yaml").read_text())
    images = {node["image"] for node in cluster["nodes"]}
    assert images == {KIND_DEFAULT_NODE_IMAGES[kind_version]}
    # The objects the tests validate are checked against the cluster's Kubernetes minor version.
    node_version = re.search(r":v(\d+\.\d+)\.", images.pop()).group(1)
    assert KUBERNETES_VERSION.startswith(f"{node_version}.")
