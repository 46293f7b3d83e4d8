"""The shared_ml images: one per in-cluster role, built from the repo's Dockerfile.

Airflow and Prefect cannot share a Python environment (fastapi pins conflict), so the Dockerfile
takes `--build-arg EXTRA=<airflow|prefect|kubeflow>` and each build is tagged
`<repository>:<version>-<extra>`, e.g. orchbench/shared-ml:0.1.0-airflow.

Two ways to get them built, chosen by stack config:
- `image.build: true`: `docker build` runs as a command step of `pulumi up` (laptop with Docker);
- `image.build: false` (CI): the workflow builds them with its layer cache before `pulumi up`.
Either way the local image is `<repository>:<version>-<extra>`. Then, to get it into the cluster:
- kind: `kind load docker-image` copies each image onto the node (pull policy IfNotPresent finds
  it there);
- EKS: the stack creates an ECR repository named `image.repository` (one repository, a tag per
  image, like the local names) and a command step tags and pushes each image there; the charts,
  the Prefect job template and the exported refs then use the ECR reference
  (`SharedMlImages.image_config`). The push step needs Docker and the AWS CLI where `pulumi up`
  runs; the nodes pull with their instance role (pulumi-eks attaches
  AmazonEC2ContainerRegistryReadOnly to it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
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


def ecr_registry(account_id: str, region: str) -> str:
    """The private registry of an account in a region (a repository URL is this + /<name>)."""
    if not (account_id.isdigit() and len(account_id) == 12):
        raise ValueError(f"expected a 12-digit AWS account id, got {account_id!r}")
    return f"{account_id}.dkr.ecr.{region}.amazonaws.com"


def push_command(local_ref: str, remote_ref: str, region: str) -> str:
    """Log in to ECR (a fresh 12-hour token on every run), tag the local image, push it."""
    registry = remote_ref.split("/", 1)[0]
    return (
        f"aws ecr get-login-password --region {region} | "
        f"docker login --username AWS --password-stdin {registry} && "
        f"docker tag {local_ref} {remote_ref} && docker push {remote_ref}"
    )


# Rebuilds under the same version tag leave the previous image untagged: drop those after a week.
ECR_LIFECYCLE_POLICY = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "description": "expire images a newer push untagged",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 7,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)


@dataclass(frozen=True)
class EcrTarget:
    """Push to this account's ECR in `region`, through `aws_provider` (the EKS stack's)."""

    region: str
    aws_provider: pulumi.ProviderResource


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
    """Exposes `refs` (extra -> image reference the cluster pulls), `image_config` (the image
    settings with the repository the cluster pulls from: hand it to the charts) and `ready`."""

    def __init__(
        self,
        name: str,
        config: ImageConfig,
        extras: list[str],
        kind_cluster: str | None,
        depends_on: list[pulumi.Resource] | None = None,
        ecr: EcrTarget | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("orchbench:infra:SharedMlImages", name, None, opts)
        unknown = sorted(set(extras) - set(EXTRAS))
        if unknown:
            raise ValueError(f"no image variant for {unknown}; expected some of {EXTRAS}")
        self.image_config = config
        self.ready: list[pulumi.Resource] = []
        repository = None
        if ecr is not None:
            repository = self._ecr_repository(name, config, ecr)
            registry = ecr_registry(self._account_id(ecr), ecr.region)
            self.image_config = config.model_copy(
                update={"repository": f"{registry}/{config.repository}"}
            )
        self.refs = {extra: self.image_config.ref(extra) for extra in extras}
        fingerprint = source_fingerprint() if config.build or ecr is not None else None
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
            if ecr is not None:
                push = command.local.Command(
                    f"{name}-push-{extra}",
                    create=push_command(config.ref(extra), self.refs[extra], ecr.region),
                    triggers=[self.refs[extra], fingerprint],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[repository, *built]),
                )
                self.ready.append(push)
        self.register_outputs({"refs": self.refs})

    def _ecr_repository(self, name: str, config: ImageConfig, ecr: EcrTarget) -> pulumi.Resource:
        import pulumi_aws as aws

        on_aws = pulumi.ResourceOptions(parent=self, provider=ecr.aws_provider)
        repository = aws.ecr.Repository(
            f"{name}-ecr",
            name=config.repository,
            # Mutable: a rebuild is pushed under the same version tag (the stack sets pull policy
            # Always on EKS so nodes fetch it).
            image_tag_mutability="MUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            force_delete=True,  # `pulumi destroy` removes the pushed images with it
            opts=on_aws,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-ecr-lifecycle",
            repository=repository.name,
            policy=ECR_LIFECYCLE_POLICY,
            opts=on_aws,
        )
        return repository

    @staticmethod
    def _account_id(ecr: EcrTarget) -> str:
        # The chart values need the registry as a plain string, so ask for the account now
        # (an invoke, answered at preview too) rather than waiting on the repository's URL.
        import pulumi_aws as aws

        identity = aws.get_caller_identity(opts=pulumi.InvokeOptions(provider=ecr.aws_provider))
        return str(identity.account_id)
