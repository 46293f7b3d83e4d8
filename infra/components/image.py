"""The shared_ml images: one per in-cluster role, built from the repo's Dockerfile.

Airflow and Prefect cannot share a Python environment (fastapi pins conflict), so the Dockerfile
takes `--build-arg EXTRA=<airflow|prefect|kubeflow>` and each build is tagged
`<repository>:<version>-<extra>`, e.g. orchbench/shared-ml:0.1.0-airflow.

Two ways to get them into the cluster, chosen by stack config:
- `image.build: true`: `docker build` runs as a command step of `pulumi up` (laptop with Docker);
- `image.build: false` (CI): the workflow builds them with its layer cache before `pulumi up`.
On kind, `kind load docker-image` then copies each image onto the node (pull policy IfNotPresent
finds it there); on EKS push to a registry instead and point `image.repository` at it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pulumi
import pulumi_command as command

from infra.config import ImageConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
EXTRAS = ("airflow", "prefect", "kubeflow")


def build_command(config: ImageConfig, extra: str, repo_root: Path = REPO_ROOT) -> str:
    return (
        f"docker build --file {repo_root / 'Dockerfile'} --build-arg EXTRA={extra} "
        f"--tag {config.ref(extra)} {repo_root}"
    )


def load_command(config: ImageConfig, extra: str, kind_cluster: str) -> str:
    return f"kind load docker-image {config.ref(extra)} --name {kind_cluster}"


def source_fingerprint(repo_root: Path = REPO_ROOT) -> str:
    """Rebuild when what goes into the image changes (lock file, Dockerfile, sources)."""
    digest = hashlib.sha256()
    for pattern in (
        "uv.lock",
        "pyproject.toml",
        "Dockerfile",
        "shared_ml/**/*.py",
        "pipelines/**/*",
    ):
        for path in sorted(repo_root.glob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(repo_root).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


class SharedMlImages(pulumi.ComponentResource):
    """Exposes `refs` (extra -> image reference) and `ready` (resources to depend on)."""

    def __init__(
        self,
        name: str,
        config: ImageConfig,
        extras: list[str],
        kind_cluster: str | None,
        depends_on: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("orchbench:infra:SharedMlImages", name, None, opts)
        unknown = sorted(set(extras) - set(EXTRAS))
        if unknown:
            raise ValueError(f"no image variant for {unknown}; expected some of {EXTRAS}")
        self.refs = {extra: config.ref(extra) for extra in extras}
        self.ready: list[pulumi.Resource] = []
        fingerprint = source_fingerprint() if config.build else None
        for extra in extras:
            built: list[pulumi.Resource] = []
            if config.build:
                build = command.local.Command(
                    f"{name}-build-{extra}",
                    create=build_command(config, extra),
                    triggers=[fingerprint],
                    opts=pulumi.ResourceOptions(parent=self),
                )
                built.append(build)
                self.ready.append(build)
            if kind_cluster is not None:
                load = command.local.Command(
                    f"{name}-kind-load-{extra}",
                    create=load_command(config, extra, kind_cluster),
                    triggers=[config.ref(extra), fingerprint],
                    opts=pulumi.ResourceOptions(
                        parent=self, depends_on=[*(depends_on or []), *built]
                    ),
                )
                self.ready.append(load)
        self.register_outputs({"refs": self.refs})
