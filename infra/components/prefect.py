"""Prefect: the prefect-server chart (with its PostgreSQL) and a Kubernetes worker.

Helm-hook strategy: `helm.v3.Release` for both charts, so hooks run as with the Helm CLI. With
background services in the server process (the default we keep), prefect-server renders no
hook at all and migrates the database on start; if `backgroundServices.runAsSeparateDeployment`
is ever turned on, its migration Job is a post-install/pre-upgrade hook, which only a Release
runs. prefect-worker has no hooks; its init container syncs the base job template.

The worker runs the shared_ml prefect image (same Prefect and prefect-kubernetes versions as the
flow-run pods it launches) instead of the chart's floating `3-python3.11-kubernetes` tag.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.components.common import (
    ARTIFACT_SECRET_NAME,
    MANAGED_BY,
    SystemNamespace,
    artifact_secret,
    container_security_context,
    pod_security_context,
    port_forward_command,
)
from infra.config import ImageConfig, PrefectConfig

CHART_REPO = "https://prefecthq.github.io/prefect-helm"
SERVER_RELEASE = "prefect-server"  # also the chart's fullnameOverride: the Service name
WORKER_RELEASE = "prefect-worker"
SERVER_IMAGE = "prefecthq/prefect"
SERVER_UID = 1001  # the official image's user, as in the chart defaults
IMAGE_UID = 50000  # the shared_ml image's user (Dockerfile)
API_PORT = 4200
DB_SECRET = "prefect-db"
REPO_ROOT = Path(__file__).resolve().parents[2]
JOB_TEMPLATE_PATH = REPO_ROOT / "pipelines" / "prefect" / "k8s-base-job-template.json"


def server_api_url(namespace: str) -> str:
    return f"http://{SERVER_RELEASE}.{namespace}.svc.cluster.local:{API_PORT}/api"


def db_connection_string(password: str, namespace: str) -> str:
    host = f"{SERVER_RELEASE}-postgresql.{namespace}.svc.cluster.local"
    return f"postgresql+asyncpg://prefect:{password}@{host}:5432/server"


def read_base_job_template(path: Path = JOB_TEMPLATE_PATH) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc


def pin_job_template(template: dict, image_ref: str, namespace: str) -> dict:
    """Make the pipeline's base job template run our pinned image, in the worker's namespace,
    and see the artifact store.

    Touches only what infra owns: the defaults of the `image` and `namespace` variables and an
    envFrom on the flow-run container. Everything else stays as the Prefect pipeline wrote it.
    The namespace: the prefect-worker chart creates its Role (jobs, pods) in the release
    namespace unless `role.namespace` is set (charts/prefect-worker/templates/role.yaml at
    prefect-helm 2026.8.18172642), and prefect-kubernetes' template defaults to `default`, where
    that Role gives the worker no rights.
    """
    pinned = copy.deepcopy(template)
    properties = pinned.get("variables", {}).get("properties", {})
    image_var = properties.get("image")
    if isinstance(image_var, dict):
        image_var["default"] = image_ref
    namespace_var = properties.get("namespace")
    if isinstance(namespace_var, dict):
        namespace_var["default"] = namespace
    manifest = pinned.get("job_configuration", {}).get("job_manifest", {})
    containers = manifest.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
    if isinstance(containers, list) and containers and isinstance(containers[0], dict):
        env_from = containers[0].setdefault("envFrom", [])
        ref = {"secretRef": {"name": ARTIFACT_SECRET_NAME}}
        if ref not in env_from:
            env_from.append(ref)
    return pinned


def server_values(config: PrefectConfig) -> dict:
    res = config.resources
    hardened = {**container_security_context(read_only_root=True), "runAsUser": SERVER_UID}
    return {
        "global": {
            "prefect": {
                "image": {
                    "repository": SERVER_IMAGE,
                    "prefectTag": f"{config.prefect_version}-python{config.python_version}",
                    "pullPolicy": "IfNotPresent",
                }
            }
        },
        "server": {
            "resources": res.server.to_k8s(),
            "automountServiceAccountToken": False,  # the server never calls the Kubernetes API
            "podSecurityContext": pod_security_context(SERVER_UID, SERVER_UID),
            "containerSecurityContext": hardened,
            # The UI is reached through `kubectl port-forward` on the same port.
            "uiConfig": {"prefectUiApiUrl": f"http://localhost:{API_PORT}/api"},
            "env": [{"name": "PREFECT_SERVER_ANALYTICS_ENABLED", "value": "false"}],
        },
        "service": {"type": "ClusterIP", "port": API_PORT, "targetPort": API_PORT},
        # The connection string lives in our Secret; the chart renders none of its own.
        "secret": {"create": False, "name": DB_SECRET},
        "postgresql": {
            "enabled": True,
            "auth": {
                "username": "prefect",
                "database": "server",
                "existingSecret": DB_SECRET,
                # Blank the chart's default password ("prefect-rocks"); with existingSecret set,
                # both the subchart and the server read ours. (The schema types it string, so
                # "" rather than null.)
                "password": "",
            },
            "image": {"tag": config.postgres_image_tag},
            "primary": {"resources": res.postgres.to_k8s()},
            "networkPolicy": {"enabled": False},  # the namespace policies govern access
        },
    }


def worker_values(
    config: PrefectConfig, image: ImageConfig, base_job_template: dict | None = None
) -> dict:
    res = config.resources
    hardened = {**container_security_context(read_only_root=True), "runAsUser": IMAGE_UID}
    worker_config: dict = {
        "workPool": config.work_pool,
        "type": "kubernetes",
        # prefect-kubernetes is in the image: never pip-install at start.
        "installPolicy": "never",
    }
    if base_job_template is not None:
        worker_config["baseJobTemplate"] = {
            "configuration": json.dumps(
                pin_job_template(base_job_template, image.ref("prefect"), config.namespace)
            )
        }
    return {
        "worker": {
            "apiConfig": "selfHostedServer",
            "selfHostedServerApiConfig": {"apiUrl": server_api_url(config.namespace)},
            "image": {
                "repository": image.repository,
                "prefectTag": image.tag("prefect"),
                "pullPolicy": image.pull_policy,
            },
            # The chart's default command is the official image's tini + entrypoint.sh; ours
            # has neither, and `prefect` is on PATH.
            "command": ["/usr/bin/env"],
            "config": worker_config,
            "resources": res.worker.to_k8s(),
            "podSecurityContext": pod_security_context(IMAGE_UID, 0),
            "containerSecurityContext": hardened,
            "initContainer": {
                "resources": res.worker.to_k8s(),
                "containerSecurityContext": hardened,
            },
        },
        # Namespaced Role: jobs and pods in this namespace only, no secrets.
        "serviceAccount": {"create": True},
        "role": {"create": True},
        "rolebinding": {"create": True},
    }


class Prefect(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        config: PrefectConfig,
        image: ImageConfig,
        provider: k8s.Provider,
        artifact_env: dict[str, pulumi.Input[str]],
        depends_on: list[pulumi.Resource] | None = None,
        job_template_path: Path = JOB_TEMPLATE_PATH,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("orchbench:infra:Prefect", name, None, opts)
        ns = config.namespace
        self.namespace = SystemNamespace(
            name,
            ns,
            # Flow-run Jobs come from the base job template; the LimitRange sizes them if not.
            default_container=config.resources.job_pod,
            depends_on=depends_on,
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        scoped = pulumi.ResourceOptions(
            parent=self, provider=provider, depends_on=self.namespace.ready
        )
        db_password = random.RandomPassword(
            f"{name}-db-password",
            length=32,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        admin_password = random.RandomPassword(
            f"{name}-db-admin-password",
            length=32,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        db_secret = k8s.core.v1.Secret(
            f"{name}-db",
            metadata={"name": DB_SECRET, "namespace": ns, "labels": MANAGED_BY},
            type="Opaque",
            string_data={
                "password": db_password.result,
                "postgres-password": admin_password.result,
                "connection-string": db_password.result.apply(
                    lambda pw: db_connection_string(pw, ns)
                ),
            },
            opts=scoped,
        )
        artifacts = artifact_secret(name, ns, artifact_env, scoped)

        self.server_values = server_values(config)
        self.server = k8s.helm.v3.Release(
            f"{name}-server",
            name=SERVER_RELEASE,
            chart="prefect-server",
            version=config.chart_version,
            repository_opts={"repo": CHART_REPO},
            namespace=ns,
            values=self.server_values,
            timeout=600,
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider, depends_on=[*self.namespace.ready, db_secret]
            ),
        )

        template = read_base_job_template(job_template_path)
        if template is None:
            pulumi.log.warn(
                f"{job_template_path} not found: the work pool gets Prefect's default "
                "Kubernetes job template; deployments must set job_variables={'image': ...}",
                resource=self,
            )
        self.worker_values = worker_values(config, image, template)
        self.worker = k8s.helm.v3.Release(
            f"{name}-worker",
            name=WORKER_RELEASE,
            chart="prefect-worker",
            version=config.chart_version,
            repository_opts={"repo": CHART_REPO},
            namespace=ns,
            values=self.worker_values,
            timeout=600,
            # The worker registers the work pool through the server's API at start.
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider, depends_on=[self.server, artifacts]
            ),
        )
        self.service = SERVER_RELEASE
        self.url = server_api_url(ns)
        self.port_forward = port_forward_command(ns, SERVER_RELEASE, API_PORT, API_PORT)
        self.register_outputs({"url": self.url, "portForward": self.port_forward})
