"""Kubeflow Pipelines standalone, from the upstream kustomize manifests at a pinned tag.

Two entry points, in order (explicit `depends_on`): `cluster-scoped-resources` (namespace, CRDs,
cluster roles), then `env/platform-agnostic` (API server, Argo workflow controller, MySQL,
SeaweedFS, metadata, UI, cache, persistence agent). `env/dev` is not used: its proxy agent
crash-loops on kind. Kustomize has no hook concept, so ordering is all there is to get right.

`kustomize.v2.Directory` renders provider-side: mocks never see its children, and the upstream
containers keep upstream resource settings. Our LimitRange in the namespace (applied before the
platform manifests) gives a default request/limit to every container that declares none,
including each pipeline step's driver and executor pods.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.components.common import (
    IngressAllowance,
    SystemNamespace,
    artifact_secret,
    port_forward_command,
)
from infra.config import KubeflowConfig

MANIFESTS_REPO = "https://github.com/kubeflow/pipelines"
# Upstream ships this Secret with the well-known pair minio/minio123; its SeaweedFS configures the
# S3 admin from it at start, and the API server and step launchers read it. We swap the values.
KFP_ARTIFACT_SECRET = "mlpipeline-minio-artifact"
UI_SERVICE, UI_PORT, UI_LOCAL_PORT = "ml-pipeline-ui", 80, 8081
API_SERVICE, API_PORT = "ml-pipeline", 8888


def manifest_url(path: str, version: str) -> str:
    """kustomize remote-target syntax: <repo>//<path>?ref=<tag>."""
    return f"{MANIFESTS_REPO}//manifests/kustomize/{path}?ref={version}"


def replace_artifact_credentials(
    access_key: pulumi.Input[str], secret_key: pulumi.Input[str]
) -> pulumi.ResourceTransform:
    """A transform for the platform manifests: generated keys instead of minio/minio123.

    Transforms (unlike kustomize patches) reach the children of the provider-side Directory.
    """

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if args.type_ != "kubernetes:core/v1:Secret":
            return None
        metadata = args.props.get("metadata") or {}
        if metadata.get("name") != KFP_ARTIFACT_SECRET:
            return None
        props = {key: value for key, value in args.props.items() if key != "data"}
        props["stringData"] = {"accesskey": access_key, "secretkey": secret_key}
        return pulumi.ResourceTransformResult(props=props, opts=args.opts)

    return transform


class Kubeflow(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        config: KubeflowConfig,
        provider: k8s.Provider,
        artifact_env: dict[str, pulumi.Input[str]],
        depends_on: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("orchbench:infra:Kubeflow", name, None, opts)
        ns = config.namespace
        self.cluster_scoped = k8s.kustomize.v2.Directory(
            f"{name}-cluster-scoped",
            directory=manifest_url("cluster-scoped-resources", config.version),
            opts=pulumi.ResourceOptions(
                parent=self, provider=provider, depends_on=depends_on or []
            ),
        )
        # The namespace itself comes from the upstream manifests (with the same
        # pod-security labels we use); we add policies and default limits to it.
        self.namespace = SystemNamespace(
            name,
            ns,
            default_container=config.default_container,
            create_namespace=False,
            allowances=[
                # The cache server is a mutating webhook called by the API server, which is
                # not a pod in any namespace: open just its webhook port.
                IngressAllowance(
                    name="allow-cache-webhook",
                    ports=["webhook-api"],
                    pod_selector={"app": "cache-server"},
                    from_anywhere=True,
                )
            ],
            depends_on=[self.cluster_scoped],
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        artifacts = artifact_secret(
            name,
            ns,
            artifact_env,
            pulumi.ResourceOptions(parent=self, provider=provider, depends_on=self.namespace.ready),
        )
        access_key = random.RandomPassword(
            f"{name}-artifact-access-key",
            length=20,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        secret_key = random.RandomPassword(
            f"{name}-artifact-secret-key",
            length=40,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.platform = k8s.kustomize.v2.Directory(
            f"{name}-platform-agnostic",
            directory=manifest_url("env/platform-agnostic", config.version),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=provider,
                depends_on=[self.cluster_scoped, *self.namespace.ready, artifacts],
                transforms=[replace_artifact_credentials(access_key.result, secret_key.result)],
            ),
        )
        self.url = f"http://{API_SERVICE}.{ns}.svc.cluster.local:{API_PORT}"
        self.port_forward = port_forward_command(ns, UI_SERVICE, UI_LOCAL_PORT, UI_PORT)
        self.api_port_forward = port_forward_command(ns, API_SERVICE, API_PORT, API_PORT)
        self.register_outputs({"url": self.url, "portForward": self.port_forward})
