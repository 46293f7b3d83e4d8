"""Secrets: what infra creates against what each consumer reads, by name and by key.

Producers are the Secrets the program declares (under Pulumi's mocks). Consumers are the
chart values that name them (each chart reads a fixed key from a Secret it is told the name
of), the committed pod and job templates and KFP IR (`envFrom` / `secretAsEnv`), and the
clients in the pods (s3fs through botocore, shared_ml's storage). A rename or a re-keyed
Secret on either side fails here.

What the charts read, at the pinned versions:
- Airflow chart: `fernetKeySecretName` -> key `fernet-key` and `data.metadataSecretName` ->
  key `connection` (apache/airflow chart/templates/_helpers.yaml, `standard_airflow_environment`);
  `jwtSecretName` -> `jwt-secret`, `apiSecretKeySecretName` -> `api-secret-key` (the keys of
  the chart's own chart/templates/secrets/jwt-secret.yaml and api-secret-key-secret.yaml,
  which the same helpers read). Read in the search index's stored revisions of those files:
  the tag helm-chart/1.22.0 itself could not be fetched here (the repository is over the size
  limit), so `helm template` in the e2e pre-flight renders the chart at 1.22.0 for real.
- The bitnami postgresql subcharts (Airflow's; prefect-server's 12.12.10, prefect-helm
  charts/prefect-server/Chart.yaml at 2026.8.18172642): from `auth.existingSecret` they read
  `auth.secretKeys.adminPasswordKey` (default `postgres-password`) when `enablePostgresUser`,
  and `userPasswordKey` (default `password`) for a custom user (bitnami/charts
  bitnami/postgresql/templates/_helpers.tpl, `postgresql.v1.adminPasswordKey` /
  `postgresql.v1.userPasswordKey`; values.yaml `auth.secretKeys`).
- prefect-server: `PREFECT_SERVER_DATABASE_CONNECTION_URL` from key `connection-string` of
  `postgresql.auth.existingSecret`, else `secret.name` (charts/prefect-server/templates/
  _helpers.tpl `server.database-env` / `server.postgres-string-secret-name`, 2026.8.18172642).
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from infra.components.common import ARTIFACT_SECRET_NAME
from infra.components.kubeflow import KFP_ARTIFACT_SECRET, replace_artifact_credentials
from infra.config import KubeflowConfig
from infra.footprint import load_stack_file
from tests.infra.mocking import (
    REPO_ROOT,
    StackRun,
    bitnami_fullname,
    deep_merge,
    helm_release,
    kubernetes_object,
)

SECRET = "core/v1:Secret"

# The key the Airflow chart reads from each Secret whose name a value gives (module docstring).
AIRFLOW_SECRET_KEYS = {
    ("data", "metadataSecretName"): "connection",
    ("fernetKeySecretName",): "fernet-key",
    ("jwtSecretName",): "jwt-secret",
    ("apiSecretKeySecretName",): "api-secret-key",
}
# The charts' own defaults for their postgresql subchart's auth (Airflow: chart/values.yaml
# `postgresql.auth`; prefect-server: charts/prefect-server/values.yaml at 2026.8.18172642).
AIRFLOW_POSTGRES_DEFAULTS = {"auth": {"enablePostgresUser": True, "username": ""}}
PREFECT_SERVER_DEFAULTS = {
    "postgresql": {
        "auth": {"enablePostgresUser": False, "username": "prefect", "database": "server"}
    },
    "secret": {"create": True, "name": ""},
}
BITNAMI_SECRET_KEYS = {"adminPasswordKey": "postgres-password", "userPasswordKey": "password"}
BITNAMI_POSTGRES_PORT = 5432  # primary.service.ports.postgresql

# kubeflow/pipelines 2.17.0: every reader of the artifact Secret reads these two keys
# (manifests/kustomize/base/pipeline/ml-pipeline-apiserver-deployment.yaml and
# ml-pipeline-ui-deployment.yaml, third-party/argo/base/workflow-controller-configmap-patch.yaml,
# the seaweedfs deployment's `s3.configure ... $accesskey $secretkey`, and the v2 launcher's
# backend/src/v2/config/env.go).
KFP_FACTS = {"2.17.0": {"secret": "mlpipeline-minio-artifact", "keys": {"accesskey", "secretkey"}}}


def at(values: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        values = values.get(key) or {}
    return values or None


def secret_data(run: StackRun, namespace: str, name: str) -> dict[str, str]:
    return kubernetes_object(run.mocks, SECRET, namespace, name).inputs.get("stringData", {})


def postgres_keys_read(postgresql: dict[str, Any]) -> set[str]:
    """The keys a bitnami postgresql subchart reads from `auth.existingSecret`."""
    auth = postgresql.get("auth", {})
    keys = {**BITNAMI_SECRET_KEYS, **auth.get("secretKeys", {})}
    read = {keys["adminPasswordKey"]} if auth.get("enablePostgresUser") else set()
    if auth.get("username") not in ("", None, "postgres"):
        read.add(keys["userPasswordKey"])
    return read


def postgres_service(release: str, namespace: str, postgresql: dict[str, Any]) -> str:
    """The subchart's primary Service (standalone: `common.names.fullname`), as a pod's DNS."""
    name = bitnami_fullname(release, "postgresql", postgresql)
    return f"{name}.{namespace}.svc.cluster.local"


# --- the Airflow chart ---------------------------------------------------------------------------


def test_the_airflow_chart_finds_each_secret_under_the_key_it_reads(stack_run):
    release = helm_release(stack_run.mocks, "airflow")
    for path, key in AIRFLOW_SECRET_KEYS.items():
        name = at(release.values, path)
        assert name, f"values {'.'.join(path)} names no Secret: the chart would make its own"
        data = secret_data(stack_run, release.namespace, name)
        assert key in data, f"{release.namespace}/{name} has {sorted(data)}, chart reads {key!r}"
    postgresql = deep_merge(AIRFLOW_POSTGRES_DEFAULTS, release.values["postgresql"])
    data = secret_data(stack_run, release.namespace, postgresql["auth"]["existingSecret"])
    assert postgres_keys_read(postgresql) <= set(data)


def test_the_airflow_metadata_connection_reaches_the_database_the_chart_runs(stack_run):
    release = helm_release(stack_run.mocks, "airflow")
    postgresql = deep_merge(AIRFLOW_POSTGRES_DEFAULTS, release.values["postgresql"])
    db_secret = secret_data(stack_run, release.namespace, postgresql["auth"]["existingSecret"])
    name = release.values["data"]["metadataSecretName"]
    url = urlsplit(secret_data(stack_run, release.namespace, name)["connection"])
    assert url.hostname == postgres_service(release.name, release.namespace, postgresql)
    assert url.port == BITNAMI_POSTGRES_PORT
    # No custom user: Airflow logs in as postgres, with the admin password the subchart set.
    assert (url.username, url.password) == ("postgres", db_secret["postgres-password"])


# --- prefect-server --------------------------------------------------------------------------------


def test_prefect_server_finds_its_database_secret_and_keys(stack_run):
    release = helm_release(stack_run.mocks, "prefect-server")
    values = deep_merge(PREFECT_SERVER_DEFAULTS, release.values)
    assert values["secret"]["create"] is False, "the chart would render its own connection"
    # The chart's server.postgres-string-secret-name: auth.existingSecret, else secret.name.
    name = values["postgresql"]["auth"].get("existingSecret") or values["secret"]["name"]
    data = secret_data(stack_run, release.namespace, name)
    assert "connection-string" in data
    assert postgres_keys_read(values["postgresql"]) <= set(data)


def test_prefect_connection_string_reaches_the_database_the_chart_runs(stack_run):
    release = helm_release(stack_run.mocks, "prefect-server")
    values = deep_merge(PREFECT_SERVER_DEFAULTS, release.values)
    auth = values["postgresql"]["auth"]
    data = secret_data(stack_run, release.namespace, auth["existingSecret"])
    url = urlsplit(data["connection-string"])
    assert url.scheme == "postgresql+asyncpg"
    assert url.hostname == postgres_service(release.name, release.namespace, values["postgresql"])
    assert url.port == BITNAMI_POSTGRES_PORT
    assert (url.username, url.password) == (auth["username"], data["password"])
    assert url.path == f"/{auth['database']}"


# --- the artifact store ------------------------------------------------------------------------


def artifact_secret_readers(run: StackRun) -> dict[str, tuple[str, set[str]]]:
    """Who reads a Secret by name for the artifact store: reader -> (namespace its pods run
    in, Secret names it reads)."""
    airflow = helm_release(run.mocks, "airflow")
    template = yaml.safe_load(airflow.values["podTemplate"])  # as the chart gets it
    (task,) = template["spec"]["containers"]
    worker = helm_release(run.mocks, "prefect-worker")
    job_template = json.loads(worker.values["worker"]["config"]["baseJobTemplate"]["configuration"])
    job_namespace = job_template["variables"]["properties"]["namespace"]["default"]
    job = job_template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    # The IR's second YAML document is its platform spec (the Kubernetes settings per task).
    ir_text = (REPO_ROOT / "pipelines/kubeflow/orchbench_ml.yaml").read_text()
    ir = {k: v for document in yaml.safe_load_all(ir_text) for k, v in document.items()}
    platform = ir.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {})
    kfp = {
        mapping["secretName"]
        for executor in platform.get("executors", {}).values()
        for mapping in executor.get("secretAsEnv", [])
    }

    def env_from(container: dict[str, Any]) -> set[str]:
        return {e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e}

    return {
        # The chart's components (extraEnvFrom, a YAML string the chart renders with tpl).
        "airflow components": (
            airflow.namespace,
            env_from({"envFrom": yaml.safe_load(airflow.values["extraEnvFrom"])}),
        ),
        # KubernetesExecutor pods run in the release namespace (the chart's
        # config.kubernetes_executor.namespace is '{{ .Release.Namespace }}').
        "airflow task pods": (airflow.namespace, env_from(task)),
        "prefect flow-run jobs": (job_namespace, env_from(job["containers"][0])),
        "kfp step pods": (KubeflowConfig().namespace, kfp),
    }


def test_every_artifact_secret_reader_finds_it_in_the_namespace_its_pods_run_in(stack_run):
    readers = artifact_secret_readers(stack_run)
    copies = []
    for reader, (namespace, names) in readers.items():
        assert names == {ARTIFACT_SECRET_NAME}, f"{reader} reads {names}"
        copies.append(secret_data(stack_run, namespace, ARTIFACT_SECRET_NAME))
    assert all(copy == copies[0] for copy in copies), "the namespaces' copies differ"


def artifact_root_sources(run: StackRun) -> dict[str, list[dict[str, Any]]]:
    """Where each reader's pods get ORCHBENCH_ARTIFACT_ROOT from the artifact Secret, as its
    pod spec says: the `envFrom` secretRefs, and for KFP each step's `secretAsEnv` mapping of
    that key. (KFP's mapping of the S3 keys is optional on purpose: on EKS, IRSA, no keys.)"""
    airflow = helm_release(run.mocks, "airflow")
    (task,) = yaml.safe_load(airflow.values["podTemplate"])["spec"]["containers"]
    worker = helm_release(run.mocks, "prefect-worker")
    job_template = json.loads(worker.values["worker"]["config"]["baseJobTemplate"]["configuration"])
    job = job_template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    ir_text = (REPO_ROOT / "pipelines/kubeflow/orchbench_ml.yaml").read_text()
    ir = {k: v for document in yaml.safe_load_all(ir_text) for k, v in document.items()}
    platform = ir["platforms"]["kubernetes"]["deploymentSpec"]["executors"]

    def env_from(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            e["secretRef"]
            for e in entries
            if e.get("secretRef", {}).get("name") == ARTIFACT_SECRET_NAME
        ]

    return {
        "airflow components": env_from(yaml.safe_load(airflow.values["extraEnvFrom"])),
        "airflow task pods": env_from(task.get("envFrom", [])),
        "prefect flow-run jobs": env_from(job["containers"][0].get("envFrom", [])),
        **{
            f"kfp {name}": [
                mapping
                for mapping in executor.get("secretAsEnv", [])
                if mapping["secretName"] == ARTIFACT_SECRET_NAME
                and "ORCHBENCH_ARTIFACT_ROOT" in {k["secretKey"] for k in mapping["keyToEnv"]}
            ]
            for name, executor in platform.items()
        },
    }


def test_every_pod_requires_the_artifact_secret(stack_run):
    """A pod whose artifact Secret were missing would write its records to its own disk and
    succeed; a required one keeps it from starting (CreateContainerConfigError) instead."""
    sources = artifact_root_sources(stack_run)
    assert len(sources) > 3, "the IR has no step"
    missing = [reader for reader, refs in sources.items() if not refs]
    assert not missing, f"these pods get no ORCHBENCH_ARTIFACT_ROOT from the Secret: {missing}"
    optional = [reader for reader, refs in sources.items() if any(r.get("optional") for r in refs)]
    assert not optional, f"these pods start without the artifact Secret: {optional}"


def test_the_artifact_keys_are_the_stores_own_credentials_and_bucket(kind_run):
    """On kind the keys pods get are the identity SeaweedFS is configured with, and the
    artifact root is the bucket it creates."""
    deployment = kubernetes_object(kind_run.mocks, "apps/v1:Deployment", *store_name(kind_run))
    namespace = deployment.inputs["metadata"]["namespace"]
    volumes = deployment.inputs["spec"]["template"]["spec"]["volumes"]
    config_secret = next(v["secret"]["secretName"] for v in volumes if "secret" in v)
    identities = json.loads(secret_data(kind_run, namespace, config_secret)["s3.json"])
    (identity,) = identities["identities"]
    (credentials,) = identity["credentials"]
    for reader, (reader_namespace, _) in artifact_secret_readers(kind_run).items():
        data = secret_data(kind_run, reader_namespace, ARTIFACT_SECRET_NAME)
        assert (data["AWS_ACCESS_KEY_ID"], data["AWS_SECRET_ACCESS_KEY"]) == (
            credentials["accessKey"],
            credentials["secretKey"],
        ), reader
        bucket = urlsplit(data["ORCHBENCH_ARTIFACT_ROOT"]).netloc
        (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
        creates = " ".join(container["lifecycle"]["postStart"]["exec"]["command"])
        assert re.findall(r"s3\.bucket\.create -name ([\w.-]+)", creates) == [bucket], reader


def store_name(run: StackRun) -> tuple[str, str]:
    """(namespace, name) of the SeaweedFS Deployment: the host AWS_ENDPOINT_URL names."""
    airflow = helm_release(run.mocks, "airflow")
    endpoint = secret_data(run, airflow.namespace, ARTIFACT_SECRET_NAME)["AWS_ENDPOINT_URL"]
    service_name, namespace = urlsplit(endpoint).hostname.split(".")[:2]
    service = kubernetes_object(run.mocks, "core/v1:Service", namespace, service_name)
    selector = service.inputs["spec"]["selector"]
    (match,) = [
        d
        for d in run.mocks.of_type("kubernetes:apps/v1:Deployment")
        if d.inputs["metadata"].get("namespace") == namespace
        and selector.items() <= d.inputs["spec"]["template"]["metadata"]["labels"].items()
    ]
    return namespace, match.inputs["metadata"]["name"]


# --- KFP's own artifact Secret ----------------------------------------------------------------


def test_kfp_artifact_credentials_are_replaced_under_the_names_kfp_reads():
    facts = KFP_FACTS.get(KubeflowConfig().version)
    assert facts, f"KFP {KubeflowConfig().version}: read its artifact Secret's readers first"
    assert facts["secret"] == KFP_ARTIFACT_SECRET
    transform = replace_artifact_credentials("generated-access", "generated-secret")
    upstream = {"metadata": {"name": facts["secret"]}, "stringData": dict.fromkeys(facts["keys"])}
    result = transform(
        SimpleNamespace(type_="kubernetes:core/v1:Secret", props=upstream, opts=None)
    )
    assert result is not None, f"the transform leaves {facts['secret']} as upstream ships it"
    assert set(result.props["stringData"]) == facts["keys"]
    assert "generated-access" in result.props["stringData"].values()


@pytest.fixture
def pod_environment(monkeypatch):
    """A pod's environment: nothing from this machine's AWS settings, no metadata service."""
    import os

    for name in list(os.environ):
        if name.startswith(("AWS_", "ORCHBENCH_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def enter(env: dict[str, str]) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    return enter


def what_a_pod_resolves() -> dict[str, Any]:
    """What a task pod's clients make of its environment: shared_ml's storage base, and the
    region, endpoint and keys s3fs gets (s3fs -> aiobotocore -> botocore's config chain)."""
    import botocore.session
    from botocore.exceptions import PartialCredentialsError

    from shared_ml.storage import storage_base

    session = botocore.session.Session()
    try:
        credentials = session.get_credentials()
        keys = (credentials.access_key, credentials.secret_key) if credentials else None
    except PartialCredentialsError as half:  # one key without the other: botocore refuses
        keys = str(half)
    return {
        "storage base": storage_base(),
        "region": session.get_config_variable("region"),
        # Placeholder keys: the endpoint is resolved whatever the credentials are.
        "endpoint": session.create_client(
            "s3", aws_access_key_id="-", aws_secret_access_key="-"
        ).meta.endpoint_url,
        "keys": keys,
    }


def test_a_pods_clients_resolve_the_store_infra_deployed(stack_run, pod_environment):
    namespace = helm_release(stack_run.mocks, "airflow").namespace
    data = secret_data(stack_run, namespace, ARTIFACT_SECRET_NAME)
    pod_environment(data)
    resolved = what_a_pod_resolves()
    store = stack_run.resolved["artifactStore"]
    assert resolved["storage base"] == store["artifactRoot"]
    if stack_run.stack == "kind":  # the in-cluster SeaweedFS, with its generated keys
        assert resolved["endpoint"] == store["endpoint"]
        assert resolved["keys"] == (data["AWS_ACCESS_KEY_ID"], data["AWS_SECRET_ACCESS_KEY"])
    else:  # EKS: S3 in the cluster's region, keys from IRSA at run time, never static ones
        region = load_stack_file("eks").cluster.eks.region
        assert resolved["region"] == region
        assert resolved["endpoint"] == f"https://s3.{region}.amazonaws.com"
        assert resolved["keys"] is None


def test_every_artifact_key_changes_what_a_pods_clients_resolve(stack_run, pod_environment):
    """A key no client reads is a rename on one side: each one, left out, must change what
    the pod resolves."""
    data = secret_data(
        stack_run, helm_release(stack_run.mocks, "airflow").namespace, ARTIFACT_SECRET_NAME
    )
    pod_environment(data)
    full = what_a_pod_resolves()
    unread = []
    for key in data:
        with pytest.MonkeyPatch.context() as without:
            without.delenv(key)
            if what_a_pod_resolves() == full:
                unread.append(key)
    assert not unread, f"no client in the pods reads {unread}"
