"""Stack configuration: one pydantic model validated before any resource is declared.

Every key lives under the `orchbench:` namespace of the Pulumi stack file, e.g.

    config:
      orchbench:cluster: {provider: kind}
      orchbench:airflow: {enabled: true, chartVersion: 1.22.0}

A typo, a wrong type, an unpinned version or an unknown key fails `pulumi up` before the first
resource exists, with the offending key and what was expected (see `StackConfigError`).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

PROJECT = "orchbench"

# Exact versions only: no ranges, no "latest", no "3-latest" floating tags.
_EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_QUANTITY_CPU = re.compile(r"^(\d+m|\d+(\.\d+)?)$")
_QUANTITY_MEMORY = re.compile(r"^\d+(Ki|Mi|Gi)$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _exact_version(value: str) -> str:
    if not _EXACT_VERSION.match(value):
        raise ValueError(f"expected an exact version like 1.2.3 (pinned), got {value!r}")
    return value


def _pinned_tag(value: str) -> str:
    if not _IMAGE_TAG.match(value):
        raise ValueError(f"expected a Docker image tag, got {value!r}")
    if "latest" in value:
        raise ValueError(f"floating tag {value!r} is not allowed: pin an exact version")
    return value


def _cpu(value: str) -> str:
    if not _QUANTITY_CPU.match(value):
        raise ValueError(f"expected a CPU quantity like 250m or 1, got {value!r}")
    return value


def _memory(value: str) -> str:
    if not _QUANTITY_MEMORY.match(value):
        raise ValueError(f"expected a memory quantity like 256Mi or 1Gi, got {value!r}")
    return value


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(f"expected a DNS-1123 label (lowercase, digits, '-'), got {value!r}")
    return value


ExactVersion = Annotated[str, AfterValidator(_exact_version)]
PinnedTag = Annotated[str, AfterValidator(_pinned_tag)]
Cpu = Annotated[str, AfterValidator(_cpu)]
Memory = Annotated[str, AfterValidator(_memory)]
DnsLabel = Annotated[str, AfterValidator(_dns_label)]


class _Model(BaseModel):
    """Stack files use camelCase keys (Pulumi's convention); code uses snake_case."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


def cpu_millis(quantity: str) -> int:
    """'250m' -> 250, '1.5' -> 1500."""
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


def memory_mib(quantity: str) -> int:
    """'512Mi' -> 512, '1Gi' -> 1024, '2048Ki' -> 2."""
    number, unit = int(quantity[:-2]), quantity[-2:]
    return {"Ki": number // 1024, "Mi": number, "Gi": number * 1024}[unit]


class Resources(_Model):
    """Requests and limits for one container. Every container we declare gets both."""

    cpu_request: Cpu
    memory_request: Memory
    cpu_limit: Cpu
    memory_limit: Memory

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Resources:
        if cpu_millis(self.cpu_limit) < cpu_millis(self.cpu_request):
            raise ValueError(f"cpuLimit {self.cpu_limit} is below cpuRequest {self.cpu_request}")
        if memory_mib(self.memory_limit) < memory_mib(self.memory_request):
            raise ValueError(
                f"memoryLimit {self.memory_limit} is below memoryRequest {self.memory_request}"
            )
        return self

    def to_k8s(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


def _res(cpu_req: str, mem_req: str, cpu_lim: str, mem_lim: str) -> Resources:
    return Resources(
        cpu_request=cpu_req, memory_request=mem_req, cpu_limit=cpu_lim, memory_limit=mem_lim
    )


# --- cluster ---------------------------------------------------------------------------------


class KindSettings(_Model):
    name: DnsLabel = "orchbench"
    # Relative to infra/. Committed so every run gets the same node image and pod subnet.
    config_path: str = "kind/cluster.yaml"
    wait: str = Field(default="180s", pattern=r"^\d+[sm]$")
    # False: `pulumi up` fails if a kind cluster of this name exists (it would be someone else's
    # state). True: use it as it is, and `pulumi destroy` leaves it alone.
    reuse_existing: bool = False


class ExistingSettings(_Model):
    kubeconfig: str | None = None  # path; None = default loading rules (~/.kube/config)
    context: str | None = None


class EksSettings(_Model):
    # The EKS cluster's own name (the EBS CSI add-on and `aws eks update-kubeconfig` use it).
    name: DnsLabel = "orchbench"
    region: str = Field(default="eu-west-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    # EKS bills a version past its 14 months of standard support at 6x (docs/infra.md, cost).
    kubernetes_version: str = Field(default="1.35", pattern=r"^1\.\d{2}$")
    instance_type: str = "m6i.large"
    desired_nodes: int = Field(default=2, ge=1, le=20)
    min_nodes: int = Field(default=1, ge=1, le=20)
    max_nodes: int = Field(default=3, ge=1, le=50)
    # Node egress. public: nodes get public IPs in public subnets (internet gateway);
    # private: nodes in private subnets behind one NAT gateway (about $0.05/h more).
    node_subnets: Literal["public", "private"] = "public"
    vpc_cidr: str = "10.0.0.0/16"
    # Two or more zones of `region` (one subnet of each kind per zone); empty: zones a and b.
    availability_zones: list[str] = Field(default_factory=list)

    @property
    def zones(self) -> list[str]:
        return self.availability_zones or [f"{self.region}a", f"{self.region}b"]

    @model_validator(mode="after")
    def _network_fits(self) -> EksSettings:
        try:
            network = ipaddress.ip_network(self.vpc_cidr)
        except ValueError as exc:
            raise ValueError(
                f"vpcCidr: expected an IPv4 network like 10.0.0.0/16 ({exc})"
            ) from None
        if network.version != 4 or not 16 <= network.prefixlen <= 20:
            raise ValueError(f"vpcCidr: expected an IPv4 network from /16 to /20, got {network}")
        zones = self.zones
        foreign = [zone for zone in zones if not re.fullmatch(rf"{self.region}[a-z]", zone)]
        if len(set(zones)) < 2 or foreign:
            raise ValueError(
                f"availabilityZones: expected two or more distinct zones of {self.region} "
                f"(EKS needs subnets in two), got {zones}"
            )
        return self

    @model_validator(mode="after")
    def _sizes_ordered(self) -> EksSettings:
        if not self.min_nodes <= self.desired_nodes <= self.max_nodes:
            raise ValueError(
                "expected minNodes <= desiredNodes <= maxNodes, got "
                f"{self.min_nodes} / {self.desired_nodes} / {self.max_nodes}"
            )
        return self


class ClusterConfig(_Model):
    provider: Literal["kind", "existing", "eks"]
    kind: KindSettings = KindSettings()
    existing: ExistingSettings = ExistingSettings()
    eks: EksSettings = EksSettings()


# --- image -----------------------------------------------------------------------------------


class ImageConfig(_Model):
    repository: str = Field(default="orchbench/shared-ml", pattern=r"^[a-z0-9./_-]+$")
    version: ExactVersion = "0.1.0"
    # True: `docker build` runs as a command step inside `pulumi up` (a laptop with Docker).
    # False: CI (or you) built the images before `pulumi up` (e2e-kind.yml does, with a cache).
    build: bool = False
    # `kind load docker-image` as a command step; defaults to on for kind clusters. On EKS the
    # images are pushed to ECR instead: `repository` is then the ECR repository's name.
    load_into_kind: bool | None = None
    pull_policy: Literal["IfNotPresent", "Never", "Always"] = "IfNotPresent"

    def ref(self, extra: str) -> str:
        """orchbench/shared-ml:<version>-<extra>, the convention of the Dockerfile."""
        return f"{self.repository}:{self.tag(extra)}"

    def tag(self, extra: str) -> str:
        return f"{self.version}-{extra}"


# --- systems ---------------------------------------------------------------------------------


class StorageConfig(_Model):
    enabled: bool = True
    namespace: DnsLabel = "orchbench-storage"
    bucket: str = Field(default="orchbench-artifacts", pattern=r"^[a-z0-9][a-z0-9.-]{2,62}$")
    # In-cluster SeaweedFS (kind / existing clusters only; EKS uses S3).
    image_tag: PinnedTag = "4.34"
    volume_size: Memory = "5Gi"
    resources: Resources = _res("50m", "256Mi", "500m", "512Mi")


# CPU requests are kept small: they are reservations, and the whole stack must schedule on one
# kind node of a CI runner (4 vCPU). Limits cap what each component may burst to.


class AirflowResources(_Model):
    api_server: Resources = _res("100m", "512Mi", "1", "1Gi")
    scheduler: Resources = _res("100m", "512Mi", "1", "1Gi")
    dag_processor: Resources = _res("100m", "384Mi", "500m", "768Mi")
    triggerer: Resources = _res("100m", "256Mi", "500m", "512Mi")
    # Matches pipelines/airflow/pod_template.yaml, which sizes task pods when it is shipped.
    task_pod: Resources = _res("250m", "512Mi", "1", "1Gi")
    migrations: Resources = _res("100m", "256Mi", "500m", "512Mi")
    postgres: Resources = _res("50m", "256Mi", "500m", "512Mi")


class AirflowConfig(_Model):
    enabled: bool = True
    namespace: DnsLabel = "airflow"
    chart_version: ExactVersion = "1.22.0"
    airflow_version: ExactVersion = "3.3.2"
    postgres_image_tag: PinnedTag = "16.1.0-debian-11-r15"
    parallelism: int = Field(default=4, ge=1, le=64)
    triggerer: bool = False
    resources: AirflowResources = AirflowResources()


class PrefectResources(_Model):
    server: Resources = _res("100m", "512Mi", "1", "1Gi")
    worker: Resources = _res("50m", "256Mi", "500m", "512Mi")
    job_pod: Resources = _res("250m", "512Mi", "1", "1Gi")
    postgres: Resources = _res("50m", "256Mi", "500m", "512Mi")


class PrefectConfig(_Model):
    enabled: bool = True
    namespace: DnsLabel = "prefect"
    # prefect-helm releases are date-versioned (YYYY.M.DDHHMMSS); both charts share the tag.
    chart_version: str = Field(default="2026.8.18172642", pattern=r"^\d{4}\.\d{1,2}\.\d+$")
    prefect_version: ExactVersion = "3.9.1"
    python_version: str = Field(default="3.11", pattern=r"^3\.\d{2}$")
    postgres_image_tag: PinnedTag = "14.13.0"
    # The pool the worker polls. pipelines/prefect/manifest.py's POOL_NAME names the same pool
    # for `python -m pipelines.prefect.deploy --kubernetes`; tests/infra/test_contract_prefect.py
    # keeps the two equal. No stack file overrides it.
    work_pool: DnsLabel = "orchbench-k8s"
    resources: PrefectResources = PrefectResources()


class KubeflowConfig(_Model):
    enabled: bool = True
    version: ExactVersion = "2.17.0"
    # Default requests/limits for KFP's upstream containers and pipeline step pods that declare
    # none (a LimitRange: the upstream manifests are applied as they are).
    default_container: Resources = _res("50m", "64Mi", "500m", "1Gi")

    @model_validator(mode="after")
    def _default_limit_admits_upstream_requests(self) -> KubeflowConfig:
        # A LimitRange default limit below a container's own request makes the API server
        # reject that pod. Upstream 2.17.0's largest requests: 250m CPU (API server), 800Mi (MySQL).
        limit = self.default_container
        if cpu_millis(limit.cpu_limit) < 250 or memory_mib(limit.memory_limit) < 800:
            raise ValueError(
                "defaultContainer limits must be at least cpuLimit 250m and memoryLimit 800Mi "
                "(KFP's own requests), got "
                f"{limit.cpu_limit} / {limit.memory_limit}"
            )
        return self

    @property
    def namespace(self) -> str:
        # Fixed by the upstream kustomization (cluster-scoped-resources sets `kubeflow`).
        return "kubeflow"


class StackConfig(_Model):
    cluster: ClusterConfig
    image: ImageConfig = ImageConfig()
    storage: StorageConfig = StorageConfig()
    airflow: AirflowConfig = AirflowConfig()
    prefect: PrefectConfig = PrefectConfig()
    kubeflow: KubeflowConfig = KubeflowConfig()

    @model_validator(mode="after")
    def _namespaces_distinct(self) -> StackConfig:
        names = [self.storage.namespace, self.airflow.namespace, self.prefect.namespace]
        names.append(self.kubeflow.namespace)
        if len(set(names)) != len(names):
            raise ValueError(f"every system needs its own namespace, got {names}")
        if self.image.load_into_kind and self.cluster.provider != "kind":
            raise ValueError(
                f"image.loadIntoKind needs cluster.provider=kind, got {self.cluster.provider!r}; "
                "push the images to a registry and set image.repository instead"
            )
        registry_host = self.image.repository.split("/")[0]
        if self.cluster.provider == "eks" and ("." in registry_host or ":" in registry_host):
            raise ValueError(
                f"image.repository on EKS is the ECR repository's name (e.g. orchbench/shared-ml; "
                f"the stack creates it and pushes there), got {self.image.repository!r}"
            )
        return self

    @property
    def load_images_into_kind(self) -> bool:
        if self.image.load_into_kind is None:
            return self.cluster.provider == "kind"
        return self.image.load_into_kind


class StackConfigError(ValueError):
    """A stack config that cannot be deployed. The message names every bad key."""


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; keys are camelCase)"
        elif item["type"] == "missing":
            message = "required key is missing"
        if item["type"] != "missing" and "got " not in message:
            message = f"{message} (got {item.get('input')!r})"
        lines.append(f"  {PROJECT}:{location}: {message}")
    return "invalid stack config:\n" + "\n".join(lines)


def parse_stack_config(raw: Mapping[str, Any]) -> StackConfig:
    """Validate config given as {key: value} with keys with or without the `orchbench:` prefix.

    Values may be JSON strings (that is how the Pulumi engine hands objects to a program).
    Keys of other namespaces (e.g. `aws:region`) are ignored.
    """
    data: dict[str, Any] = {}
    for key, value in raw.items():
        namespace, _, name = key.rpartition(":")
        if namespace not in ("", PROJECT):
            continue
        if isinstance(value, str) and value[:1] in "{[":
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise StackConfigError(
                    f"invalid stack config:\n  {PROJECT}:{name}: not valid JSON/YAML ({exc})"
                ) from exc
        data[name] = value
    try:
        return StackConfig.model_validate(data)
    except ValidationError as exc:
        raise StackConfigError(_describe(exc)) from None


def load_stack_config() -> StackConfig:
    """Read every `orchbench:*` key the engine passed to this program and validate it."""
    from pulumi.runtime import config as runtime_config

    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return parse_stack_config(raw)
