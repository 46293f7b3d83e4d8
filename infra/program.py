"""The whole stack as one function of a validated config (so tests can run it under mocks)."""

from __future__ import annotations

from typing import Any

import pulumi

from infra.components.airflow import Airflow
from infra.components.cluster import Cluster
from infra.components.image import SharedMlImages
from infra.components.kubeflow import Kubeflow
from infra.components.prefect import Prefect
from infra.components.storage import ArtifactStore
from infra.config import StackConfig
from infra.footprint import footprint


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
    images = SharedMlImages(
        "shared-ml",
        config.image,
        extras,
        kind_cluster=cluster.kind_name if config.load_images_into_kind else None,
        depends_on=cluster.ready,
    )

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
            aws_provider=getattr(cluster, "aws_provider", None),
            depends_on=cluster.ready,
        )
        artifact_env = storage.env

    ready = [*cluster.ready, *images.ready, *(storage.ready if storage else [])]
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
    if config.cluster.provider == "eks":
        exports["kubeconfig"] = pulumi.Output.secret(cluster.eks_cluster.kubeconfig_json)

    if config.airflow.enabled:
        airflow = Airflow(
            "airflow", config.airflow, config.image, provider, artifact_env, depends_on=ready
        )
        exports["airflow"] = {
            "url": airflow.url,
            "portForward": airflow.port_forward,
            "localUrl": "http://localhost:8080",
            "adminPassword": airflow.admin_password_hint,
        }
    if config.prefect.enabled:
        prefect = Prefect(
            "prefect", config.prefect, config.image, provider, artifact_env, depends_on=ready
        )
        exports["prefect"] = {
            "url": prefect.url,
            "portForward": prefect.port_forward,
            "localUrl": "http://localhost:4200",
            "workPool": config.prefect.work_pool,
        }
    if config.kubeflow.enabled:
        kubeflow = Kubeflow("kubeflow", config.kubeflow, provider, artifact_env, depends_on=ready)
        exports["kubeflow"] = {
            "url": kubeflow.url,
            "portForward": kubeflow.port_forward,
            "apiPortForward": kubeflow.api_port_forward,
            "localUrl": "http://localhost:8081",
        }
    return exports
