"""The whole stack as one function of a validated config (so tests can run it under mocks)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra.components.airflow import Airflow, read_pod_template
from infra.components.cluster import Cluster
from infra.components.image import EcrTarget, SharedMlImages
from infra.components.kubeflow import Kubeflow
from infra.components.prefect import Prefect, read_base_job_template
from infra.components.storage import IRSA_ROLE_ANNOTATION, ArtifactAccess, ArtifactStore
from infra.config import StackConfig
from infra.footprint import footprint

# KFP runs every pipeline step as this service account unless a run names another
# (kubeflow/pipelines 2.17.0, backend/src/apiserver/common/const.go:
# DefaultPipelineRunnerServiceAccount).
KFP_RUNNER_SERVICE_ACCOUNT = "pipeline-runner"


def _airflow_task_service_account() -> str:
    """What Airflow's task pods run as: the pod template's serviceAccountName, else `default`."""
    template = read_pod_template()
    spec = (yaml.safe_load(template) or {}).get("spec", {}) if template else {}
    return spec.get("serviceAccountName") or "default"


def _prefect_job_service_account() -> str:
    """What Prefect's flow-run pods run as: the job template's account (literal or the default
    of its `service_account_name` variable), else the namespace's `default`."""
    template = read_base_job_template() or {}
    manifest = template.get("job_configuration", {}).get("job_manifest", {})
    named = manifest.get("spec", {}).get("template", {}).get("spec", {}).get("serviceAccountName")
    if isinstance(named, str) and named and "{{" not in named:
        return named
    variable = template.get("variables", {}).get("properties", {}).get("service_account_name")
    return (variable or {}).get("default") or "default"


def artifact_service_accounts(config: StackConfig) -> list[tuple[str, str]]:
    """(namespace, service account) of every pod that reads or writes pipeline artifacts: the
    task pods of each enabled tool, read from the templates that create them."""
    accounts = []
    if config.airflow.enabled:
        accounts.append((config.airflow.namespace, _airflow_task_service_account()))
    if config.prefect.enabled:
        accounts.append((config.prefect.namespace, _prefect_job_service_account()))
    if config.kubeflow.enabled:
        accounts.append((config.kubeflow.namespace, KFP_RUNNER_SERVICE_ACCOUNT))
    return accounts


def deploy(config: StackConfig) -> dict[str, Any]:
    """Declare every resource of the stack; return what `__main__` exports."""
    cluster = Cluster("cluster", config.cluster)
    provider = cluster.provider

    enabled = {
        "airflow": config.airflow.enabled,
        "prefect": config.prefect.enabled,
        "kubeflow": config.kubeflow.enabled,
    }
    extras = [system for system, on in enabled.items() if on]
    on_eks = config.cluster.provider == "eks"
    images = SharedMlImages(
        "shared-ml",
        config.image,
        extras,
        kind_cluster=cluster.kind_name if config.load_images_into_kind else None,
        depends_on=cluster.ready,
        ecr=EcrTarget(config.cluster.eks.region, cluster.aws_provider) if on_eks else None,
    )
    # On EKS the charts must pull from ECR: every system gets the settings images pushed to.
    image = images.image_config

    consumers = [
        system_config.namespace
        for system_config in (config.airflow, config.prefect, config.kubeflow)
        if system_config.enabled
    ]
    storage = None
    artifact_env: dict[str, pulumi.Input[str]] = {}
    if config.storage.enabled:
        storage = ArtifactStore(
            "storage",
            config.storage,
            cluster_kind=config.cluster.provider,
            consumer_namespaces=consumers,
            provider=provider,
            aws_provider=cluster.aws_provider,
            depends_on=cluster.ready,
            access=ArtifactAccess(
                cluster.oidc, config.cluster.eks.region, artifact_service_accounts(config)
            )
            if on_eks and cluster.oidc is not None and any(enabled.values())
            else None,
        )
        artifact_env = storage.env

    ready = [*cluster.ready, *images.ready, *(storage.ready if storage else [])]
    systems: dict[str, pulumi.Resource] = {}
    exports: dict[str, Any] = {
        "clusterProvider": config.cluster.provider,
        "images": images.refs,
        "footprint": {name: f.to_dict() for name, f in footprint(config).items()},
    }
    if storage is not None:
        exports["artifactStore"] = {
            "endpoint": storage.endpoint,
            "artifactRoot": storage.artifact_root,
        }
    if on_eks:
        exports["kubeconfig"] = pulumi.Output.secret(cluster.eks_cluster.kubeconfig_json)

    if config.airflow.enabled:
        airflow = Airflow(
            "airflow", config.airflow, image, provider, artifact_env, depends_on=ready
        )
        systems["airflow"] = airflow
        exports["airflow"] = {
            "url": airflow.url,
            "portForward": airflow.port_forward,
            "localUrl": "http://localhost:8080",
            "adminPassword": airflow.admin_password_hint,
        }
    if config.prefect.enabled:
        prefect = Prefect(
            "prefect", config.prefect, image, provider, artifact_env, depends_on=ready
        )
        systems["prefect"] = prefect
        exports["prefect"] = {
            "url": prefect.url,
            "portForward": prefect.port_forward,
            "localUrl": "http://localhost:4200",
            "workPool": config.prefect.work_pool,
        }
    if config.kubeflow.enabled:
        kubeflow = Kubeflow("kubeflow", config.kubeflow, provider, artifact_env, depends_on=ready)
        systems["kubeflow"] = kubeflow
        exports["kubeflow"] = {
            "url": kubeflow.url,
            "portForward": kubeflow.port_forward,
            "apiPortForward": kubeflow.api_port_forward,
            "localUrl": "http://localhost:8081",
        }
    if storage is not None and storage.role_arn is not None:
        _annotate_artifact_service_accounts(storage, config, systems, provider)
        exports["artifactStore"]["roleArn"] = storage.role_arn
    return exports


def _annotate_artifact_service_accounts(
    storage: ArtifactStore,
    config: StackConfig,
    systems: dict[str, pulumi.Resource],
    provider: k8s.Provider,
) -> None:
    """Point each artifact-reading service account at the bucket's IRSA role. The accounts
    belong to the charts, KFP's manifests or the namespace, so patch them after those exist;
    the webhook reads the annotation when a task pod is created, long after `pulumi up`."""
    system_of = {
        config.airflow.namespace: "airflow",
        config.prefect.namespace: "prefect",
        config.kubeflow.namespace: "kubeflow",
    }
    for namespace, account in storage.service_accounts:
        k8s.core.v1.ServiceAccountPatch(
            f"irsa-{namespace}-{account}",
            metadata={
                "name": account,
                "namespace": namespace,
                # Only the annotation: the labels belong to whoever made the account (Helm).
                "annotations": {IRSA_ROLE_ANNOTATION: storage.role_arn},
            },
            opts=pulumi.ResourceOptions(
                provider=provider, depends_on=[systems[system_of[namespace]]]
            ),
        )
