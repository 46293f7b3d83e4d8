"""Each ComponentResource on its own, under Pulumi mocks."""

from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s
import pytest

from infra.components.airflow import Airflow, fernet_key, metadata_connection
from infra.components.cluster import INFRA_DIR, Cluster
from infra.components.image import SharedMlImages, build_command
from infra.components.kubeflow import Kubeflow
from infra.components.prefect import Prefect
from infra.components.storage import ArtifactStore
from infra.config import parse_stack_config
from tests.infra.mocking import RELEASE, fake_secret, run_under_mocks


def config(**sections):
    raw = {"orchbench:cluster": {"provider": "kind"}}
    raw.update({f"orchbench:{key}": value for key, value in sections.items()})
    return parse_stack_config(raw)


def provider() -> k8s.Provider:
    return k8s.Provider("test-k8s", kubeconfig="{}")


# --- cluster ---------------------------------------------------------------------------------


def test_kind_cluster_is_a_command_step_with_the_committed_config():
    cluster_config = config().cluster
    mocks, _ = run_under_mocks(lambda: Cluster("cluster", cluster_config))
    kind = mocks.named("cluster-kind")
    assert kind.typ == "command:local:Command"
    create = kind.inputs["create"]
    assert f"kind create cluster --name orchbench --config {INFRA_DIR / 'kind/cluster.yaml'}" in (
        create
    )
    assert "kind get kubeconfig --name orchbench" in create
    assert kind.inputs["delete"] == "kind delete cluster --name orchbench"
    provider_ = mocks.named("cluster-k8s")
    assert provider_.typ == "pulumi:providers:kubernetes"
    assert "cluster-kind" in provider_.depends_on
    assert "kind: Config" in provider_.inputs["kubeconfig"]


def test_existing_cluster_uses_the_given_kubeconfig_and_context():
    raw = {
        "orchbench:cluster": {
            "provider": "existing",
            "existing": {"kubeconfig": "/k/config", "context": "ctx"},
        }
    }
    cluster_config = parse_stack_config(raw).cluster
    mocks, _ = run_under_mocks(lambda: Cluster("cluster", cluster_config))
    assert mocks.of_type("command:local:Command") == []
    provider_ = mocks.named("cluster-k8s")
    assert (provider_.inputs["kubeconfig"], provider_.inputs["context"]) == ("/k/config", "ctx")


def test_eks_cluster_is_sized_from_config():
    raw = {
        "orchbench:cluster": {
            "provider": "eks",
            "eks": {
                "region": "us-west-2",
                "instanceType": "t3.large",
                "desiredNodes": 3,
                "maxNodes": 4,
            },
        }
    }
    cluster_config = parse_stack_config(raw).cluster
    mocks, _ = run_under_mocks(lambda: Cluster("cluster", cluster_config))
    eks = mocks.named("cluster-eks")
    assert eks.typ == "eks:index:Cluster"
    assert eks.inputs["instanceType"] == "t3.large"
    assert (eks.inputs["desiredCapacity"], eks.inputs["minSize"], eks.inputs["maxSize"]) == (
        3,
        1,
        4,
    )
    assert eks.inputs["createOidcProvider"] is True
    assert mocks.named("cluster-aws").inputs["region"] == "us-west-2"


# --- image -----------------------------------------------------------------------------------


def test_images_are_built_and_loaded_per_extra():
    image = config(image={"build": True}).image
    mocks, refs = run_under_mocks(
        lambda: SharedMlImages("img", image, ["airflow", "prefect"], kind_cluster="orchbench").refs
    )
    assert refs == {
        "airflow": "orchbench/shared-ml:0.1.0-airflow",
        "prefect": "orchbench/shared-ml:0.1.0-prefect",
    }
    build = mocks.named("img-build-airflow")
    assert build.inputs["create"] == build_command(image, "airflow")
    assert "--build-arg EXTRA=airflow" in build.inputs["create"]
    load = mocks.named("img-kind-load-prefect")
    assert load.inputs["create"] == (
        "kind load docker-image orchbench/shared-ml:0.1.0-prefect --name orchbench"
    )
    assert "img-build-prefect" in load.depends_on
    assert mocks.of_type("command:local:Command").__len__() == 4


def test_prebuilt_images_are_only_loaded_and_unknown_extras_rejected():
    image = config(image={"build": False}).image
    mocks, _ = run_under_mocks(
        lambda: SharedMlImages("img", image, ["kubeflow"], kind_cluster="orchbench").refs
    )
    assert [d.name for d in mocks.of_type("command:local:Command")] == ["img-kind-load-kubeflow"]
    with pytest.raises(ValueError, match="no image variant"):
        run_under_mocks(lambda: SharedMlImages("img", image, ["spark"], kind_cluster=None))


# --- storage ---------------------------------------------------------------------------------


@pulumi.runtime.test
def test_seaweedfs_credentials_are_generated_and_secret():
    """Assertions inside apply: the test returns the Output so a failure cannot pass silently."""
    storage_config = config().storage
    store_holder = {}

    def check(values):
        access_key, secret_key, endpoint = values
        assert access_key == fake_secret("storage-access-key", 20)
        assert secret_key == fake_secret("storage-secret-key", 40)
        assert endpoint == "http://seaweedfs.orchbench-storage.svc.cluster.local:8333"

    store_holder["store"] = ArtifactStore(
        "storage", storage_config, "kind", ["airflow"], provider=provider()
    )
    env = store_holder["store"].env
    return pulumi.Output.all(
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_ENDPOINT_URL"]
    ).apply(check)


def test_seaweedfs_store_is_namespaced_and_reachable_only_from_the_tools():
    storage_config = config().storage
    mocks, _ = run_under_mocks(
        lambda: (
            ArtifactStore(
                "storage", storage_config, "kind", ["airflow", "prefect"], provider=provider()
            ).endpoint
        )
    )
    identities = json.loads(mocks.named("storage-s3-config").inputs["stringData"]["s3.json"])
    credentials = identities["identities"][0]["credentials"][0]
    assert credentials["secretKey"] == fake_secret("storage-secret-key", 40)
    assert mocks.named("storage-service").inputs["spec"]["type"] == "ClusterIP"
    policy = mocks.named("storage-allow-s3-from-orchestrators").inputs["spec"]
    sources = [
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for p in policy["ingress"][0]["from"]
    ]
    assert sources == ["airflow", "prefect"]
    assert policy["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8333}]
    deployment = mocks.named("storage-seaweedfs").inputs
    assert "storage-default-deny-ingress" in mocks.named("storage-seaweedfs").depends_on
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "ghcr.io/chrislusf/seaweedfs:4.34"
    )


def test_s3_bucket_on_eks_is_private_and_encrypted():
    storage_config = config().storage
    mocks, root = run_under_mocks(
        lambda: (
            ArtifactStore(
                "storage", storage_config, "eks", ["airflow"], provider=provider()
            ).artifact_root
        )
    )
    assert root == "s3://orchbench-artifacts-abc123"
    block = mocks.named("storage-bucket-private").inputs
    assert all(
        block[k] is True
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    rule = mocks.named("storage-bucket-encryption").inputs["rules"][0]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    assert mocks.of_type("kubernetes:apps/v1:Deployment") == []


# --- airflow ---------------------------------------------------------------------------------


def test_airflow_release_is_pinned_and_uses_generated_secrets(tmp_path):
    stack = config()
    mocks, _ = run_under_mocks(
        lambda: (
            Airflow(
                "airflow",
                stack.airflow,
                stack.image,
                provider(),
                {"A": "b"},
                pod_template_path=tmp_path / "absent.yaml",
            ).url
        )
    )
    release = mocks.named("airflow", RELEASE)
    assert release.typ == "kubernetes:helm.sh/v3:Release"
    assert (release.inputs["chart"], release.inputs["version"]) == ("airflow", "1.22.0")
    assert release.inputs["repositoryOpts"]["repo"] == "https://airflow.apache.org"
    assert release.inputs["namespace"] == "airflow"
    values = release.inputs["values"]
    assert values["executor"] == "KubernetesExecutor"
    assert values["images"]["airflow"] == {
        "repository": "orchbench/shared-ml",
        "tag": "0.1.0-airflow",
        "pullPolicy": "IfNotPresent",
    }
    assert "podTemplate" not in values  # absent file: chart default, with a warning
    # The release waits for its namespace policies and every secret it references.
    assert {
        "airflow-metadata",
        "airflow-fernet",
        "airflow-jwt",
        "airflow-api",
        "airflow-postgres",
        "airflow-default-deny-ingress",
    } <= release.depends_on

    password = fake_secret("airflow-db-password")
    metadata = mocks.named("airflow-metadata").inputs
    assert metadata["metadata"]["name"] == values["data"]["metadataSecretName"]
    assert metadata["stringData"]["connection"] == metadata_connection(password, "airflow")
    assert mocks.named("airflow-postgres").inputs["stringData"]["postgres-password"] == password
    fernet = mocks.named("airflow-fernet").inputs["stringData"]["fernet-key"]
    assert len(fernet) == 44 and "+" not in fernet and "/" not in fernet


def test_airflow_ships_the_pipeline_pod_template_when_present(tmp_path):
    template = tmp_path / "pod_template.yaml"
    template.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: task\n")
    stack = config()
    mocks, _ = run_under_mocks(
        lambda: (
            Airflow(
                "airflow", stack.airflow, stack.image, provider(), {}, pod_template_path=template
            ).url
        )
    )
    assert mocks.named("airflow", RELEASE).inputs["values"]["podTemplate"] == template.read_text()


def test_fernet_key_is_url_safe_32_bytes():
    import base64

    key = fernet_key(base64.b64encode(bytes(range(250, 256)) * 5 + b"\xfb\xff").decode())
    assert len(base64.urlsafe_b64decode(key)) == 32
    with pytest.raises(ValueError, match="32 bytes"):
        fernet_key(base64.b64encode(b"short").decode())


# --- prefect ---------------------------------------------------------------------------------


def test_prefect_server_then_worker_with_generated_db_password(tmp_path):
    stack = config()
    mocks, _ = run_under_mocks(
        lambda: (
            Prefect(
                "prefect",
                stack.prefect,
                stack.image,
                provider(),
                {},
                job_template_path=tmp_path / "absent.json",
            ).url
        )
    )
    server, worker = mocks.named("prefect-server"), mocks.named("prefect-worker")
    for release in (server, worker):
        assert release.inputs["version"] == "2026.8.18172642"
        assert (
            release.inputs["repositoryOpts"]["repo"] == "https://prefecthq.github.io/prefect-helm"
        )
        assert release.inputs["namespace"] == "prefect"
    assert "prefect-server" in worker.depends_on
    assert "prefect-db" in server.depends_on
    assert server.inputs["values"]["global"]["prefect"]["image"]["prefectTag"] == "3.9.1-python3.11"
    db = mocks.named("prefect-db").inputs["stringData"]
    assert db["password"] == fake_secret("prefect-db-password")
    assert db["connection-string"] == (
        f"postgresql+asyncpg://prefect:{db['password']}@"
        "prefect-server-postgresql.prefect.svc.cluster.local:5432/server"
    )
    worker_values = worker.inputs["values"]["worker"]
    assert worker_values["selfHostedServerApiConfig"]["apiUrl"] == (
        "http://prefect-server.prefect.svc.cluster.local:4200/api"
    )
    assert "baseJobTemplate" not in worker_values["config"]


def test_prefect_work_pool_job_template_runs_the_shared_ml_image(tmp_path):
    template = {
        "job_configuration": {
            "job_manifest": {
                "spec": {
                    "template": {
                        "spec": {"containers": [{"name": "prefect-job", "image": "{{ image }}"}]}
                    }
                }
            }
        },
        "variables": {"properties": {"image": {"type": "string", "default": "x:1"}}},
    }
    path = tmp_path / "k8s-base-job-template.json"
    path.write_text(json.dumps(template))
    stack = config()
    mocks, _ = run_under_mocks(
        lambda: (
            Prefect(
                "prefect", stack.prefect, stack.image, provider(), {}, job_template_path=path
            ).url
        )
    )
    configured = mocks.named("prefect-worker").inputs["values"]["worker"]["config"]
    shipped = json.loads(configured["baseJobTemplate"]["configuration"])
    assert shipped["variables"]["properties"]["image"]["default"] == (
        "orchbench/shared-ml:0.1.0-prefect"
    )
    container = shipped["job_configuration"]["job_manifest"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert container["envFrom"] == [{"secretRef": {"name": "orchbench-artifacts"}}]
    assert container["image"] == "{{ image }}"  # the rest is the pipeline's, untouched


# --- kubeflow --------------------------------------------------------------------------------


def test_kubeflow_applies_cluster_scoped_resources_first():
    stack = config()
    mocks, _ = run_under_mocks(lambda: Kubeflow("kubeflow", stack.kubeflow, provider(), {}).url)
    cluster_scoped = mocks.named("kubeflow-cluster-scoped")
    platform = mocks.named("kubeflow-platform-agnostic")
    assert cluster_scoped.typ == platform.typ == "kubernetes:kustomize/v2:Directory"
    assert cluster_scoped.inputs["directory"] == (
        "https://github.com/kubeflow/pipelines//manifests/kustomize/"
        "cluster-scoped-resources?ref=2.17.0"
    )
    assert platform.inputs["directory"].endswith("/env/platform-agnostic?ref=2.17.0")
    assert "kubeflow-cluster-scoped" in platform.depends_on
    # Default limits exist before the platform's pods are created.
    assert "kubeflow-default-container-resources" in platform.depends_on
    # The namespace comes from upstream: we must not declare it a second time.
    assert mocks.of_type("kubernetes:core/v1:Namespace") == []
    assert "kubeflow-cluster-scoped" in mocks.named("kubeflow-default-deny-ingress").depends_on


def test_kfp_default_artifact_credentials_are_replaced():
    from infra.components.kubeflow import replace_artifact_credentials

    transform = replace_artifact_credentials("generated-access", "generated-secret")
    upstream = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "mlpipeline-minio-artifact", "namespace": "kubeflow"},
        "stringData": {"accesskey": "minio", "secretkey": "minio123"},
    }
    opts = pulumi.ResourceOptions()
    result = transform(
        pulumi.ResourceTransformArgs(
            custom=True, type_="kubernetes:core/v1:Secret", name="x", props=upstream, opts=opts
        )
    )
    assert result.props["stringData"] == {
        "accesskey": "generated-access",
        "secretkey": "generated-secret",
    }
    assert result.props["metadata"] == upstream["metadata"]
    other = {**upstream, "metadata": {"name": "mysql-secret"}}
    assert (
        transform(
            pulumi.ResourceTransformArgs(
                custom=True, type_="kubernetes:core/v1:Secret", name="y", props=other, opts=opts
            )
        )
        is None
    )
    assert (
        transform(
            pulumi.ResourceTransformArgs(
                custom=True,
                type_="kubernetes:core/v1:ConfigMap",
                name="z",
                props=upstream,
                opts=opts,
            )
        )
        is None
    )
