"""What a step pod needs in its environment on a cluster, set on every task of the IR.

A KFP step pod runs the shared_ml image as its user (uid 50000, gid 0) with the code in
``/opt/orchbench``, which that user cannot write. So every task gets:

- ``ORCHBENCH_HOME=/home/orchbench``: the image's home, owned by that user (the Dockerfile
  sets the same value in every image); nothing resolves under the read-only code folder;
- the artifact store's settings from infra's Secret ``orchbench-artifacts``, which infra
  creates in the ``kubeflow`` namespace where KFP runs the step pods
  (infra/components/kubeflow.py): ``ORCHBENCH_ARTIFACT_ROOT`` (required: without it a step's
  records and the registry would stay in its own pod), and the S3 endpoint and keys
  (optional: on EKS the bucket is reached through IRSA, and the Secret has no keys).
  Relative storage roots of the config then resolve under the object store in every pod
  (``shared_ml.storage``), where the next step and ``orchbench`` read them.

The Secret is mapped through the Kubernetes platform config (``secretAsEnv``) exactly as
``kfp.kubernetes.use_secret_as_env`` (kfp-kubernetes 2.17.x) writes it: the deprecated
``secretName`` plus ``secretNameParameter``, which the 2.17.0 driver reads
(backend/src/v2/driver/k8s.go, kubernetes_platform/proto/kubernetes_executor_config.proto).
kfp.local ignores platform configs, so a local run never sees these Secrets; it does see
the container env, and ``run.py`` gives ``ORCHBENCH_HOME`` its local value there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # kfp is needed only to compile; the constants serve infra's tests too
    from kfp import dsl

HOME_ENV = "ORCHBENCH_HOME"
# The Dockerfile's ORCHBENCH_HOME (and HOME) for uid 50000, in every image.
IMAGE_HOME = "/home/orchbench"
# infra/components/common.py's ARTIFACT_SECRET_NAME, in every tool's namespace.
ARTIFACT_SECRET = "orchbench-artifacts"
# Keys of that Secret (infra/components/storage.py's ArtifactStore.env), each to the same
# variable: the root the storage resolves under, then how s3fs (botocore) reaches the store.
REQUIRED_STORE_KEYS: tuple[str, ...] = ("ORCHBENCH_ARTIFACT_ROOT",)
OPTIONAL_STORE_KEYS: tuple[str, ...] = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",  # the name botocore reads the region from, not AWS_REGION
)


def secret_as_env(secret: str, keys: tuple[str, ...], optional: bool) -> dict[str, Any]:
    """One ``secretAsEnv`` entry of a KubernetesExecutorConfig, as JSON."""
    return {
        "secretName": secret,
        "secretNameParameter": {"runtimeValue": {"constant": secret}},
        "keyToEnv": [{"secretKey": key, "envVar": key} for key in keys],
        "optional": optional,
    }


def store_secret_env() -> list[dict[str, Any]]:
    return [
        secret_as_env(ARTIFACT_SECRET, REQUIRED_STORE_KEYS, optional=False),
        secret_as_env(ARTIFACT_SECRET, OPTIONAL_STORE_KEYS, optional=True),
    ]


def on_cluster_storage(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """Give ``task`` the image's writable home and the artifact store (see the module)."""
    task.set_env_variable(HOME_ENV, IMAGE_HOME)
    kubernetes = dict(task.platform_config.get("kubernetes", {}))
    kubernetes["secretAsEnv"] = [*kubernetes.get("secretAsEnv", []), *store_secret_env()]
    task.platform_config["kubernetes"] = kubernetes
    return task
