"""Object storage for pipeline artifacts.

On EKS: an S3 bucket (private, encrypted, TLS only), read and written by the pods whose service
accounts an IRSA role trusts (`ArtifactAccess`), with a policy that reaches this bucket only. On kind or an existing cluster: a single-node
SeaweedFS with its S3 gateway in its own namespace. Why not KFP's bundled SeaweedFS: it ships with
fixed, publicly known credentials (`mlpipeline-minio-artifact`), it exists only when KFP is
enabled, and sharing it would charge KFP's footprint for the other tools' artifacts. A dedicated
store with generated keys keeps the comparison fair and the credentials secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.components.cluster import OidcProvider, irsa_trust_policy
from infra.components.common import (
    MANAGED_BY,
    IngressAllowance,
    SystemNamespace,
    container_security_context,
    pod_security_context,
)
from infra.config import StorageConfig

# The image (and tag) KFP 2.17.0 itself runs: one SeaweedFS build in the cluster.
SEAWEEDFS_IMAGE = "ghcr.io/chrislusf/seaweedfs"
S3_PORT = 8333
SEAWEEDFS_UID = 1000
SERVICE_NAME = "seaweedfs"


def seaweedfs_s3_identities(access_key: str, secret_key: str) -> str:
    """SeaweedFS S3 gateway config: one identity with our generated keys, nothing anonymous."""
    return json.dumps(
        {
            "identities": [
                {
                    "name": "orchbench",
                    "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
    )


def seaweedfs_deployment(config: StorageConfig) -> dict:
    """The Deployment spec (plain data, so tests validate it against the Kubernetes schema)."""
    labels = {"app.kubernetes.io/name": "seaweedfs", **MANAGED_BY}
    create_bucket = (
        f"for i in $(seq 1 60); do echo 's3.bucket.create -name {config.bucket}' | "
        "weed shell >/dev/null 2>&1 && exit 0; sleep 2; done; exit 0"
    )
    return {
        "metadata": {"name": "seaweedfs", "namespace": config.namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            # One volume, one writer: never run two pods on the same data.
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app.kubernetes.io/name": "seaweedfs"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security_context(SEAWEEDFS_UID, SEAWEEDFS_UID),
                    "containers": [
                        {
                            "name": "seaweedfs",
                            "image": f"{SEAWEEDFS_IMAGE}:{config.image_tag}",
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["/usr/bin/weed"],
                            "args": [
                                "server",
                                "-dir=/data",
                                "-ip.bind=0.0.0.0",
                                "-master.volumeSizeLimitMB=256",
                                "-volume.max=0",
                                "-master.volumePreallocate=false",
                                "-s3",
                                f"-s3.port={S3_PORT}",
                                "-s3.config=/etc/seaweedfs/s3.json",
                            ],
                            "ports": [{"name": "s3", "containerPort": S3_PORT}],
                            "readinessProbe": {
                                "httpGet": {"path": "/status", "port": "s3"},
                                "initialDelaySeconds": 5,
                                "periodSeconds": 5,
                            },
                            "livenessProbe": {
                                "httpGet": {"path": "/status", "port": "s3"},
                                "initialDelaySeconds": 30,
                                "periodSeconds": 30,
                                "timeoutSeconds": 10,
                            },
                            "lifecycle": {
                                # Buckets are not created on first write; make ours once the
                                # server answers. Never fails the container.
                                "postStart": {"exec": {"command": ["/bin/sh", "-c", create_bucket]}}
                            },
                            "resources": config.resources.to_k8s(),
                            "securityContext": container_security_context(),
                            "volumeMounts": [
                                {"name": "data", "mountPath": "/data"},
                                {"name": "tmp", "mountPath": "/tmp"},
                                {
                                    "name": "s3-config",
                                    "mountPath": "/etc/seaweedfs",
                                    "readOnly": True,
                                },
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "data", "persistentVolumeClaim": {"claimName": "seaweedfs-data"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                        {"name": "s3-config", "secret": {"secretName": "seaweedfs-s3-config"}},
                    ],
                },
            },
        },
    }


@dataclass(frozen=True)
class ArtifactAccess:
    """IRSA on EKS: these (namespace, service account) pairs may read and write the bucket."""

    oidc: OidcProvider
    region: str
    service_accounts: list[tuple[str, str]]


# The annotation the EKS pod identity webhook reads to give a pod the role's credentials.
IRSA_ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"


def bucket_access_policy(bucket_arn: str) -> str:
    """Read, write and list this bucket; nothing else (the registry's conditional writes are
    plain PutObject with If-None-Match / If-Match)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ListTheArtifactBucket",
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                    "Resource": bucket_arn,
                },
                {
                    "Sid": "ReadWriteArtifacts",
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:DeleteObject",
                        "s3:AbortMultipartUpload",
                    ],
                    "Resource": f"{bucket_arn}/*",
                },
            ],
        }
    )


def tls_only_bucket_policy(bucket_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyPlainHttp",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


class ArtifactStore(pulumi.ComponentResource):
    """Exposes `env`: the variables a pipeline pod needs to read and write artifacts."""

    env: dict[str, pulumi.Input[str]]

    def __init__(
        self,
        name: str,
        config: StorageConfig,
        cluster_kind: str,
        consumer_namespaces: list[str],
        provider: k8s.Provider,
        aws_provider: pulumi.ProviderResource | None = None,
        depends_on: list[pulumi.Resource] | None = None,
        access: ArtifactAccess | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("orchbench:infra:ArtifactStore", name, None, opts)
        self.config = config
        self.artifact_root = f"s3://{config.bucket}"
        self.role_arn: pulumi.Output[str] | None = None
        if cluster_kind == "eks":
            self._s3_bucket(name, config, aws_provider)
            if access is not None:
                self._irsa_role(name, access, aws_provider)
        else:
            self._seaweedfs(name, config, consumer_namespaces, provider, depends_on or [])
        self.register_outputs({"artifactRoot": self.artifact_root, "endpoint": self.endpoint})

    def _s3_bucket(
        self, name: str, config: StorageConfig, aws_provider: pulumi.ProviderResource | None
    ) -> None:
        import pulumi_aws as aws

        opts = pulumi.ResourceOptions(parent=self, provider=aws_provider)
        bucket = aws.s3.Bucket(
            f"{name}-bucket", bucket_prefix=f"{config.bucket}-", force_destroy=True, opts=opts
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-bucket-private",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=opts,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-bucket-encryption",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=opts,
        )
        self.bucket = bucket
        self.artifact_root = bucket.bucket.apply(lambda b: f"s3://{b}")
        self.endpoint = "https://s3.amazonaws.com"
        # Credentials come from the node role / IRSA on EKS, never from a static key.
        self.env = {"ORCHBENCH_ARTIFACT_ROOT": self.artifact_root}
        self.ready: list[pulumi.Resource] = [bucket]
        aws.s3.BucketPolicy(
            f"{name}-bucket-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(tls_only_bucket_policy),
            opts=opts,
        )

    def _irsa_role(
        self, name: str, access: ArtifactAccess, aws_provider: pulumi.ProviderResource | None
    ) -> None:
        import pulumi_aws as aws

        opts = pulumi.ResourceOptions(parent=self, provider=aws_provider)
        role = aws.iam.Role(
            f"{name}-irsa",
            description="orchbench pipeline pods: read and write the artifact bucket",
            assume_role_policy=pulumi.Output.all(access.oidc.arn, access.oidc.issuer).apply(
                lambda oidc: irsa_trust_policy(oidc[0], oidc[1], access.service_accounts)
            ),
            opts=opts,
        )
        aws.iam.RolePolicy(
            f"{name}-irsa-bucket",
            role=role.id,
            policy=self.bucket.arn.apply(bucket_access_policy),
            opts=opts,
        )
        self.role_arn = role.arn
        self.service_accounts = access.service_accounts
        # boto3/s3fs need a region to sign with; the webhook's variables give the credentials.
        # botocore reads it from AWS_DEFAULT_REGION only (botocore/configprovider.py).
        self.env = {**self.env, "AWS_DEFAULT_REGION": access.region}
        self.ready.append(role)

    def _seaweedfs(
        self,
        name: str,
        config: StorageConfig,
        consumer_namespaces: list[str],
        provider: k8s.Provider,
        depends_on: list[pulumi.Resource],
    ) -> None:
        self.namespace = SystemNamespace(
            name,
            config.namespace,
            default_container=config.resources,
            allowances=[
                IngressAllowance(
                    name="allow-s3-from-orchestrators",
                    ports=[S3_PORT],
                    from_namespaces=consumer_namespaces,
                    pod_selector={"app.kubernetes.io/name": "seaweedfs"},
                )
            ],
            depends_on=depends_on,
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        scoped = pulumi.ResourceOptions(
            parent=self, provider=provider, depends_on=self.namespace.ready
        )
        access_key = random.RandomPassword(
            f"{name}-access-key", length=20, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        secret_key = random.RandomPassword(
            f"{name}-secret-key", length=40, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        k8s.core.v1.Secret(
            f"{name}-s3-config",
            metadata={
                "name": "seaweedfs-s3-config",
                "namespace": config.namespace,
                "labels": MANAGED_BY,
            },
            type="Opaque",
            string_data={
                "s3.json": pulumi.Output.all(access_key.result, secret_key.result).apply(
                    lambda keys: seaweedfs_s3_identities(*keys)
                )
            },
            opts=scoped,
        )
        k8s.core.v1.PersistentVolumeClaim(
            f"{name}-data",
            metadata={
                "name": "seaweedfs-data",
                "namespace": config.namespace,
                "labels": MANAGED_BY,
                # kind's local-path class binds on first consumer; the Deployment is that
                # consumer, so waiting for Bound here would only serialise the two.
                "annotations": {"pulumi.com/skipAwait": "true"},
            },
            spec={
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": config.volume_size}},
            },
            opts=scoped,
        )
        deployment = seaweedfs_deployment(config)
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-seaweedfs",
            metadata=deployment["metadata"],
            spec=deployment["spec"],
            opts=scoped,
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": SERVICE_NAME, "namespace": config.namespace, "labels": MANAGED_BY},
            spec={
                "type": "ClusterIP",
                "selector": {"app.kubernetes.io/name": "seaweedfs"},
                "ports": [{"name": "s3", "port": S3_PORT, "targetPort": "s3"}],
            },
            opts=scoped,
        )
        self.endpoint = f"http://{SERVICE_NAME}.{config.namespace}.svc.cluster.local:{S3_PORT}"
        self.env = {
            "ORCHBENCH_ARTIFACT_ROOT": self.artifact_root,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": access_key.result,
            "AWS_SECRET_ACCESS_KEY": secret_key.result,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        self.ready = [self.deployment, self.service]
