"""The Kubernetes cluster: kind (created by a command step), an existing kubeconfig, or EKS."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from infra.config import ClusterConfig

INFRA_DIR = Path(__file__).resolve().parents[1]


class Cluster(pulumi.ComponentResource):
    """Exposes `provider` (every Kubernetes resource uses it) and `ready` (depend on it)."""

    provider: k8s.Provider
    ready: list[pulumi.Resource]

    def __init__(
        self, name: str, config: ClusterConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orchbench:infra:Cluster", name, None, opts)
        self.kind_name: str | None = None
        self.ready = []
        build = {"kind": self._kind, "existing": self._existing, "eks": self._eks}
        self.provider = build[config.provider](name, config)
        self.register_outputs({"kind": config.provider})

    def _kind(self, name: str, config: ClusterConfig) -> k8s.Provider:
        # Pulumi has no maintained kind provider, so the kind CLI runs as a command step.
        # `kind get clusters | grep` makes create idempotent when a cluster of that name exists.
        kind = config.kind
        config_file = INFRA_DIR / kind.config_path
        if not config_file.is_file():
            raise FileNotFoundError(f"cluster.kind.configPath: no kind config at {config_file}")
        self.kind_name = kind.name
        create = (
            f"(kind get clusters | grep -qx {kind.name} || "
            f"kind create cluster --name {kind.name} --config {config_file} --wait {kind.wait}) >&2"
            f" && kind get kubeconfig --name {kind.name}"
        )
        cluster = command.local.Command(
            f"{name}-kind",
            create=create,
            delete=f"kind delete cluster --name {kind.name}",
            triggers=[config_file.read_text()],
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stdout"]),
        )
        self.ready = [cluster]
        return k8s.Provider(
            f"{name}-k8s",
            kubeconfig=cluster.stdout,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster]),
        )

    def _existing(self, name: str, config: ClusterConfig) -> k8s.Provider:
        existing = config.existing
        return k8s.Provider(
            f"{name}-k8s",
            kubeconfig=existing.kubeconfig,
            context=existing.context,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _eks(self, name: str, config: ClusterConfig) -> k8s.Provider:
        import pulumi_aws as aws
        import pulumi_eks as eks

        settings = config.eks
        aws_provider = aws.Provider(
            f"{name}-aws", region=settings.region, opts=pulumi.ResourceOptions(parent=self)
        )
        cluster = eks.Cluster(
            f"{name}-eks",
            version=settings.kubernetes_version,
            instance_type=settings.instance_type,
            desired_capacity=settings.desired_nodes,
            min_size=settings.min_nodes,
            max_size=settings.max_nodes,
            # IRSA for pods that need AWS (the artifact bucket).
            create_oidc_provider=True,
            node_associate_public_ip_address=False,
            opts=pulumi.ResourceOptions(parent=self, providers={"aws": aws_provider}),
        )
        self.eks_cluster = cluster
        self.aws_provider = aws_provider
        self.ready = [cluster]
        return k8s.Provider(
            f"{name}-k8s",
            kubeconfig=cluster.kubeconfig_json,
            opts=pulumi.ResourceOptions(parent=self),
        )
