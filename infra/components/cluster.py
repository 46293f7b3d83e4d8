"""The Kubernetes cluster: kind (created by a command step), an existing kubeconfig, or EKS.

EKS comes with what a bare `eks.Cluster` lacks for this stack:
- its own VPC, so nodes have egress (image pulls, the chart repositories): public subnets with
  public IPs, or private subnets behind one NAT gateway (`eks.nodeSubnets`);
- the EBS CSI add-on with its IRSA role, and a default gp3 StorageClass: EKS clusters from 1.30
  on have no default StorageClass, so every PVC (Airflow's and Prefect's PostgreSQL, KFP's MySQL
  and SeaweedFS) would stay Pending;
- an IAM OIDC provider, which the artifact bucket's IRSA role trusts (infra/components/storage.py).
"""

from __future__ import annotations

import ipaddress
import json
import math
import shlex
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from infra.components.common import MANAGED_BY
from infra.config import ClusterConfig, EksSettings, KindSettings

INFRA_DIR = Path(__file__).resolve().parents[1]

# The EBS CSI add-on's controller runs as this service account and needs this managed policy
# (Amazon EKS user guide, "Amazon EBS CSI driver" add-on page).
EBS_CSI_ADDON = "aws-ebs-csi-driver"
EBS_CSI_SERVICE_ACCOUNT = ("kube-system", "ebs-csi-controller-sa")
EBS_CSI_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"
DEFAULT_STORAGE_CLASS = "gp3"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
NODE_ROOT_VOLUME_GIB = 20  # pulumi-eks' own default for the node group, written down for the cost


def kind_create_command(kind: KindSettings, config_file: Path) -> str:
    """Shell for the create step: stdout is the kubeconfig, everything else goes to stderr.

    A cluster of the same name is someone else's (another stack, a dev cluster): unless
    `kind.reuseExisting` says so, stop with a message instead of adopting it silently.
    """
    name = shlex.quote(kind.name)
    exists = f"kind get clusters 2>/dev/null | grep -qx {name}"
    create = (
        f"kind create cluster --name {name} --config {shlex.quote(str(config_file))} "
        f"--wait {kind.wait} >&2"
    )
    if kind.reuse_existing:
        make_cluster = f"{{ {exists} || {create}; }}"
    else:
        refuse = (
            f"echo \"kind cluster '{kind.name}' already exists: delete it "
            f"(kind delete cluster --name {kind.name}) or set "
            'orchbench:cluster.kind.reuseExisting to true to use it as it is" >&2; exit 1'
        )
        make_cluster = f"{{ if {exists}; then {refuse}; fi; {create}; }}"
    return f"{make_cluster} && kind get kubeconfig --name {name}"


def irsa_trust_policy(
    oidc_provider_arn: str, oidc_issuer: str, service_accounts: list[tuple[str, str]]
) -> str:
    """Trust policy of an IAM role that exactly these service accounts may assume (IRSA).

    `oidc_issuer` is the issuer URL without `https://`, as EKS writes it into the token's claims.
    """
    if not service_accounts:
        raise ValueError("an IRSA role needs at least one (namespace, service account)")
    subjects = sorted(f"system:serviceaccount:{ns}:{sa}" for ns, sa in set(service_accounts))
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": oidc_provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{oidc_issuer}:aud": "sts.amazonaws.com",
                            f"{oidc_issuer}:sub": subjects,
                        }
                    },
                }
            ],
        }
    )


def subnet_cidrs(settings: EksSettings) -> dict[str, list[str]]:
    """Split the VPC into equal subnets: one public (and, if private, one private) per zone."""
    zones = settings.zones
    network = ipaddress.ip_network(settings.vpc_cidr)
    wanted = len(zones) * (2 if settings.node_subnets == "private" else 1)
    blocks = [str(b) for b in network.subnets(prefixlen_diff=math.ceil(math.log2(wanted)))]
    cidrs = {"public": blocks[: len(zones)]}
    if settings.node_subnets == "private":
        cidrs["private"] = blocks[len(zones) : 2 * len(zones)]
    return cidrs


@dataclass(frozen=True)
class Network:
    """The EKS VPC: nodes go into `private` subnets if there are any, else into `public` ones."""

    vpc: pulumi.Resource
    public: list
    private: list
    egress: list[pulumi.Resource]  # routes and gateways nodes need before they boot


@dataclass(frozen=True)
class OidcProvider:
    """What an IRSA trust policy names: the provider's ARN and its issuer (no `https://`)."""

    arn: pulumi.Output[str]
    issuer: pulumi.Output[str]


class Cluster(pulumi.ComponentResource):
    """Exposes `provider` (every Kubernetes resource uses it) and `ready` (depend on it)."""

    provider: k8s.Provider
    ready: list[pulumi.Resource]

    def __init__(
        self, name: str, config: ClusterConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("orchbench:infra:Cluster", name, None, opts)
        self.kind_name: str | None = None
        self.aws_provider: pulumi.ProviderResource | None = None
        self.oidc: OidcProvider | None = None
        self.ready = []
        build = {"kind": self._kind, "existing": self._existing, "eks": self._eks}
        self.provider = build[config.provider](name, config)
        self.register_outputs({"kind": config.provider})

    def _kind(self, name: str, config: ClusterConfig) -> k8s.Provider:
        # Pulumi has no maintained kind provider, so the kind CLI runs as a command step.
        kind = config.kind
        config_file = INFRA_DIR / kind.config_path
        if not config_file.is_file():
            raise FileNotFoundError(f"cluster.kind.configPath: no kind config at {config_file}")
        self.kind_name = kind.name
        cluster = command.local.Command(
            f"{name}-kind",
            create=kind_create_command(kind, config_file),
            # A reused cluster is not ours to delete.
            delete=None if kind.reuse_existing else f"kind delete cluster --name {kind.name}",
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
        on_aws = pulumi.ResourceOptions(parent=self, provider=aws_provider)
        network = self._network(name, settings, on_aws)
        cluster = eks.Cluster(
            f"{name}-eks",
            name=settings.name,
            version=settings.kubernetes_version,
            instance_type=settings.instance_type,
            desired_capacity=settings.desired_nodes,
            min_size=settings.min_nodes,
            max_size=settings.max_nodes,
            node_root_volume_size=NODE_ROOT_VOLUME_GIB,
            node_root_volume_encrypted=True,
            vpc_id=network.vpc.id,
            public_subnet_ids=[subnet.id for subnet in network.public],
            private_subnet_ids=[subnet.id for subnet in network.private] or None,
            # Nodes in public subnets reach the internet only with a public IP.
            node_associate_public_ip_address=settings.node_subnets == "public",
            create_oidc_provider=True,  # IRSA: the EBS CSI driver and the artifact bucket
            # Nodes must find their route out when they boot (image pulls, joining the cluster).
            opts=pulumi.ResourceOptions(
                parent=self, providers={"aws": aws_provider}, depends_on=network.egress
            ),
        )
        self.eks_cluster = cluster
        self.aws_provider = aws_provider
        self.oidc = OidcProvider(arn=cluster.oidc_provider_arn, issuer=cluster.oidc_issuer)
        provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=cluster.kubeconfig_json,
            opts=pulumi.ResourceOptions(parent=self),
        )
        addon = self._ebs_csi(name, settings, cluster, on_aws)
        storage_class = k8s.storage.v1.StorageClass(
            f"{name}-{DEFAULT_STORAGE_CLASS}",
            metadata={
                "name": DEFAULT_STORAGE_CLASS,
                "labels": MANAGED_BY,
                "annotations": {DEFAULT_CLASS_ANNOTATION: "true"},
            },
            provisioner=EBS_CSI_PROVISIONER,
            parameters={"type": "gp3", "encrypted": "true"},
            # The volume is made in the zone the pod is scheduled to, not in a random one.
            volume_binding_mode="WaitForFirstConsumer",
            reclaim_policy="Delete",
            allow_volume_expansion=True,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[addon]),
        )
        self.ready = [cluster, addon, storage_class]
        return provider

    def _network(self, name: str, settings: EksSettings, on_aws: pulumi.ResourceOptions) -> Network:
        import pulumi_aws as aws

        cidrs = subnet_cidrs(settings)
        tags = {"Name": settings.name, "app.kubernetes.io/part-of": "orchbench"}
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=settings.vpc_cidr,
            enable_dns_hostnames=True,  # EKS nodes register by their DNS names
            enable_dns_support=True,
            tags=tags,
            opts=on_aws,
        )
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=tags, opts=on_aws)
        public_routes = aws.ec2.RouteTable(
            f"{name}-public-routes",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
            tags=tags,
            opts=on_aws,
        )
        egress: list[pulumi.Resource] = [public_routes]
        public = self._subnets(
            name,
            "public",
            vpc,
            settings,
            cidrs,
            public_routes,
            egress,
            on_aws,
            tags={**tags, "kubernetes.io/role/elb": "1"},
        )
        private: list = []
        if settings.node_subnets == "private":
            # One NAT gateway for all zones: a zone outage cuts egress, but it costs a third
            # of one per zone, which is the right trade for a benchmark environment.
            address = aws.ec2.Eip(f"{name}-nat-ip", domain="vpc", tags=tags, opts=on_aws)
            nat = aws.ec2.NatGateway(
                f"{name}-nat",
                allocation_id=address.id,
                subnet_id=public[0].id,
                tags=tags,
                opts=pulumi.ResourceOptions.merge(
                    on_aws, pulumi.ResourceOptions(depends_on=[gateway])
                ),
            )
            private_routes = aws.ec2.RouteTable(
                f"{name}-private-routes",
                vpc_id=vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
                tags=tags,
                opts=on_aws,
            )
            egress += [nat, private_routes]
            private = self._subnets(
                name,
                "private",
                vpc,
                settings,
                cidrs,
                private_routes,
                egress,
                on_aws,
                tags={**tags, "kubernetes.io/role/internal-elb": "1"},
            )
        return Network(vpc=vpc, public=public, private=private, egress=egress)

    @staticmethod
    def _subnets(
        name: str,
        kind: str,
        vpc,
        settings: EksSettings,
        cidrs: dict[str, list[str]],
        routes,
        egress: list[pulumi.Resource],
        on_aws: pulumi.ResourceOptions,
        tags: dict[str, str],
    ) -> list:
        """One ``kind`` ("public" or "private") subnet per zone, each routed through
        ``routes``; the route associations join ``egress`` (what the nodes wait for).
        Public subnets give nodes public IPs only when they are the node subnets."""
        import pulumi_aws as aws

        subnets = []
        for zone, cidr in zip(settings.zones, cidrs[kind], strict=True):
            subnet = aws.ec2.Subnet(
                f"{name}-{kind}-{zone}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zone,
                map_public_ip_on_launch=kind == "public" and settings.node_subnets == "public",
                tags=tags,
                opts=on_aws,
            )
            egress.append(
                aws.ec2.RouteTableAssociation(
                    f"{name}-{kind}-{zone}-routes",
                    subnet_id=subnet.id,
                    route_table_id=routes.id,
                    opts=on_aws,
                )
            )
            subnets.append(subnet)
        return subnets

    def _ebs_csi(
        self, name: str, settings: EksSettings, cluster, on_aws: pulumi.ResourceOptions
    ) -> pulumi.Resource:
        """The EBS CSI add-on, its controller assuming an IRSA role with the managed policy."""
        import pulumi_aws as aws

        role = aws.iam.Role(
            f"{name}-ebs-csi-role",
            assume_role_policy=pulumi.Output.all(
                cluster.oidc_provider_arn, cluster.oidc_issuer
            ).apply(lambda oidc: irsa_trust_policy(oidc[0], oidc[1], [EBS_CSI_SERVICE_ACCOUNT])),
            opts=on_aws,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi-policy", role=role.id, policy_arn=EBS_CSI_POLICY_ARN, opts=on_aws
        )
        return aws.eks.Addon(
            f"{name}-ebs-csi",
            cluster_name=settings.name,
            addon_name=EBS_CSI_ADDON,
            service_account_role_arn=role.arn,
            opts=pulumi.ResourceOptions.merge(
                on_aws, pulumi.ResourceOptions(depends_on=[cluster, attachment])
            ),
        )
