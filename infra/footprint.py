"""What each system asks of the cluster, computed from the same values the program deploys.

No Pulumi import here: the benchmark harness (core environment, no Pulumi) reads this to report
the resource cost next to the timings, e.g.

    from infra.footprint import footprint_for_stack
    for system in footprint_for_stack("kind").values():
        print(system.system, system.pods, system.cpu_request_millis, system.memory_limit_mib)

Standing pods (Deployments/StatefulSets that are always up) are summed; per-task pods (Airflow
task pods, Prefect flow-run jobs) and one-off jobs are listed with `per_task=True` and kept out
of the totals, because how many exist depends on the workload. KFP comes from upstream manifests:
its sizes are recorded per version below (with our LimitRange filling the gaps); for a version
without a record the figures are `None` (measure them on the cluster).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from infra.config import (
    PROJECT,
    Resources,
    StackConfig,
    cpu_millis,
    memory_mib,
    parse_stack_config,
)

INFRA_DIR = Path(__file__).resolve().parent

# KFP's standing pods as the upstream manifests size them (env/platform-agnostic at tag 2.17.0,
# read from the rendered kustomization): (deployment, cpu request, memory request, cpu limit,
# memory limit) of the main container, None where upstream sets nothing. One replica each.
# Init containers (wait-for-*, 10m/16Mi) are smaller than their pod's main container, so a pod's
# effective request is its main container's. Missing values come from our namespace LimitRange.
KFP_UPSTREAM_SIZES: dict[str, list[tuple[str, str | None, str | None, str | None, str | None]]] = {
    "2.17.0": [
        ("cache-deployer-deployment", None, None, None, None),
        ("cache-server", None, None, None, None),
        ("metadata-envoy-deployment", None, None, None, None),
        ("metadata-grpc-deployment", None, None, None, None),
        ("metadata-writer", None, None, None, None),
        ("ml-pipeline", "250m", "500Mi", None, None),
        ("ml-pipeline-persistenceagent", "120m", "500Mi", None, None),
        ("ml-pipeline-scheduledworkflow", None, None, None, None),
        ("ml-pipeline-ui", "10m", "70Mi", None, None),
        ("ml-pipeline-viewer-crd", None, None, None, None),
        ("ml-pipeline-visualizationserver", "30m", "500Mi", None, None),
        ("mysql", "100m", "800Mi", None, None),
        ("seaweedfs", "64m", "256Mi", None, None),
        ("workflow-controller", "100m", "500Mi", None, None),
    ]
}


def kfp_components(version: str, defaults: Resources) -> list[PodFootprint] | None:
    """KFP's pods with the LimitRange defaults filled in, or None for an unknown version."""
    sizes = KFP_UPSTREAM_SIZES.get(version)
    if sizes is None:
        return None
    components = []
    for name, cpu_req, mem_req, cpu_lim, mem_lim in sizes:
        resources = Resources(
            cpu_request=cpu_req or defaults.cpu_request,
            memory_request=mem_req or defaults.memory_request,
            cpu_limit=cpu_lim or defaults.cpu_limit,
            memory_limit=mem_lim or defaults.memory_limit,
        )
        components.append(PodFootprint.of(name, resources))
    return components


@dataclass(frozen=True)
class PodFootprint:
    component: str
    replicas: int
    cpu_request_millis: int
    memory_request_mib: int
    cpu_limit_millis: int
    memory_limit_mib: int
    per_task: bool = False

    @classmethod
    def of(
        cls, component: str, resources: Resources, replicas: int = 1, per_task: bool = False
    ) -> PodFootprint:
        return cls(
            component=component,
            replicas=replicas,
            cpu_request_millis=cpu_millis(resources.cpu_request),
            memory_request_mib=memory_mib(resources.memory_request),
            cpu_limit_millis=cpu_millis(resources.cpu_limit),
            memory_limit_mib=memory_mib(resources.memory_limit),
            per_task=per_task,
        )


@dataclass(frozen=True)
class SystemFootprint:
    system: str
    namespace: str
    declared: bool
    components: list[PodFootprint] = field(default_factory=list)
    note: str = ""

    def _standing(self) -> list[PodFootprint]:
        return [c for c in self.components if not c.per_task]

    def _sum(self, attribute: str) -> int | None:
        if not self.declared:
            return None
        return sum(getattr(c, attribute) * c.replicas for c in self._standing())

    @property
    def pods(self) -> int | None:
        return self._sum("replicas") if self.declared else None

    @property
    def cpu_request_millis(self) -> int | None:
        return self._sum("cpu_request_millis")

    @property
    def memory_request_mib(self) -> int | None:
        return self._sum("memory_request_mib")

    @property
    def cpu_limit_millis(self) -> int | None:
        return self._sum("cpu_limit_millis")

    @property
    def memory_limit_mib(self) -> int | None:
        return self._sum("memory_limit_mib")

    def to_dict(self) -> dict:
        totals = {
            name: getattr(self, name)
            for name in (
                "pods",
                "cpu_request_millis",
                "memory_request_mib",
                "cpu_limit_millis",
                "memory_limit_mib",
            )
        }
        return {**asdict(self), "totals": totals}


def footprint(config: StackConfig) -> dict[str, SystemFootprint]:
    """Per enabled system: standing pods and their summed requests/limits."""
    systems: dict[str, SystemFootprint] = {}
    if config.storage.enabled and config.cluster.provider != "eks":
        systems["storage"] = SystemFootprint(
            "storage",
            config.storage.namespace,
            True,
            [PodFootprint.of("seaweedfs", config.storage.resources)],
        )
    if config.airflow.enabled:
        res = config.airflow.resources
        components = [
            PodFootprint.of("api-server", res.api_server),
            PodFootprint.of("scheduler", res.scheduler),
            PodFootprint.of("dag-processor", res.dag_processor),
            PodFootprint.of("postgresql", res.postgres),
        ]
        if config.airflow.triggerer:
            components.append(PodFootprint.of("triggerer", res.triggerer))
        components += [
            PodFootprint.of("task-pod", res.task_pod, per_task=True),
            PodFootprint.of("migrate-database-job", res.migrations, per_task=True),
        ]
        systems["airflow"] = SystemFootprint(
            "airflow",
            config.airflow.namespace,
            True,
            components,
            note=f"up to {config.airflow.parallelism} task pods at once (core.parallelism)",
        )
    if config.prefect.enabled:
        res = config.prefect.resources
        systems["prefect"] = SystemFootprint(
            "prefect",
            config.prefect.namespace,
            True,
            [
                PodFootprint.of("server", res.server),
                PodFootprint.of("worker", res.worker),
                PodFootprint.of("postgresql", res.postgres),
                PodFootprint.of("flow-run-job", res.job_pod, per_task=True),
            ],
            note="one Kubernetes Job per flow run",
        )
    if config.kubeflow.enabled:
        kfp = config.kubeflow
        standing = kfp_components(kfp.version, kfp.default_container)
        step_pod = PodFootprint.of("step-pod", kfp.default_container, per_task=True)
        note = "two pods (driver + executor) per pipeline step; unsized ones get the LimitRange"
        if standing is None:
            note = f"no upstream sizes recorded for KFP {kfp.version}; measure on the cluster"
        systems["kubeflow"] = SystemFootprint(
            "kubeflow",
            kfp.namespace,
            standing is not None,
            [*(standing or []), step_pod],
            note=note,
        )
    return systems


def load_stack_file(stack: str, infra_dir: Path = INFRA_DIR) -> StackConfig:
    """Validate `Pulumi.<stack>.yaml` without the Pulumi engine."""
    path = infra_dir / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text()) or {}
    raw = {k: v for k, v in (document.get("config") or {}).items() if k.startswith(f"{PROJECT}:")}
    return parse_stack_config(raw)


def footprint_for_stack(stack: str, infra_dir: Path = INFRA_DIR) -> dict[str, SystemFootprint]:
    return footprint(load_stack_file(stack, infra_dir))


def _cell(value: int | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value}{unit}"


def markdown_table(systems: dict[str, SystemFootprint]) -> str:
    """The table docs/infra.md shows (a test keeps the two in step)."""
    lines = [
        "| system | standing pods | CPU requests | memory requests | CPU limits | memory limits |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for system in systems.values():
        lines.append(
            f"| {system.system} | {_cell(system.pods)} | {_cell(system.cpu_request_millis, 'm')}"
            f" | {_cell(system.memory_request_mib, ' MiB')}"
            f" | {_cell(system.cpu_limit_millis, 'm')} | {_cell(system.memory_limit_mib, ' MiB')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """`python -m infra.footprint --stack kind [--markdown]`: for the harness (subprocess)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="kind", help="reads infra/Pulumi.<stack>.yaml")
    parser.add_argument("--markdown", action="store_true", help="a table instead of JSON")
    args = parser.parse_args(argv)
    systems = footprint_for_stack(args.stack)
    if args.markdown:
        print(markdown_table(systems))
    else:
        print(json.dumps({name: system.to_dict() for name, system in systems.items()}, indent=2))


if __name__ == "__main__":
    main()
