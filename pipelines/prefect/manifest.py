"""The Kubernetes work pool for cluster mode: its base job template, generated here.

    python -m pipelines.prefect.manifest [PATH]           # regenerate k8s-base-job-template.json
    python -m pipelines.prefect.manifest --check [PATH]   # exit 1 if it is stale or invalid

Starts from prefect-kubernetes' default template and changes only what orchbench needs:

- the flow-run container's env names ``shared_ml`` in ``PREFECT_LOGGING_EXTRA_LOGGERS``, so
  the steps' log lines reach the task-run logs in the UI and the API;
- the image defaults to ``orchbench/shared-ml:0.1.0-prefect`` (shared_ml + pipelines + Prefect;
  the flow is found by module path, so no code is pulled at run time);
- Jobs go to the ``prefect`` namespace, where infra deploys the worker: the prefect-worker
  chart's Role (templates/role.yaml at the pinned prefect-helm tag 2026.8.18172642) is created
  in the release namespace unless ``role.namespace`` says otherwise, and prefect-kubernetes'
  own default (``default``) is a namespace that Role does not reach;
- the flow-run container reads the artifact store's settings from infra's Secret
  ``orchbench-artifacts`` (``ORCHBENCH_ARTIFACT_ROOT``, the S3 endpoint and keys), so its
  records and artifacts land on the cluster's object store, and has ``ORCHBENCH_HOME`` set
  to the image's writable home;
- the pod runs as non-root (uid 50000, gid 0: the image's user), no privilege escalation,
  all capabilities dropped, the runtime's default seccomp profile;
- CPU and memory requests and limits have defaults (variables, so a deployment can override);
- ``completions``/``parallelism`` sit in the Job spec: the upstream default puts them in the
  pod spec, which a strict schema check rejects as unknown fields.

``rendered_job_manifest`` fills the template with its defaults exactly as the worker would,
so a test can validate the result offline as a Kubernetes object (``kubernetes_validate``,
strict, pinned ``K8S_VERSION``). infra's Pulumi code reads the committed JSON for the
prefect-worker chart.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from pipelines.manifest_cli import write_or_check
from shared_ml.logs import LOGGER_NAME as SHARED_ML_LOGGER

IMAGE = "orchbench/shared-ml:0.1.0-prefect"
K8S_VERSION = "1.33"
# The cluster's work pool. The same name as infra/config.py's PrefectConfig.work_pool (the pool
# the worker infra deploys polls); infra cannot import this module, so
# tests/infra/test_contract_prefect.py compares the two.
POOL_NAME = "orchbench-k8s"
# infra/config.py's PrefectConfig.namespace: the worker's namespace, the only one its Role
# reaches (infra/components/prefect.py sets it again from the stack's config).
JOB_NAMESPACE = "prefect"
# infra/components/common.py's ARTIFACT_SECRET_NAME: infra copies the artifact store's
# settings into this Secret in every tool's namespace.
ARTIFACT_SECRET = "orchbench-artifacts"
# The image's writable home for uid 50000 (Dockerfile: HOME and ORCHBENCH_HOME).
ORCHBENCH_HOME = "/home/orchbench"
TEMPLATE_PATH = Path(__file__).with_name("k8s-base-job-template.json")
RUN_AS_USER = 50000
RESOURCE_DEFAULTS = {
    "cpu_request": "250m",
    "cpu_limit": "1",
    "memory_request": "512Mi",
    "memory_limit": "1Gi",
}


def base_job_template() -> dict[str, Any]:
    from prefect_kubernetes.worker import KubernetesWorker

    template = copy.deepcopy(KubernetesWorker.get_default_base_job_template())
    variables = template["variables"]["properties"]
    variables["image"]["default"] = IMAGE
    variables["image_pull_policy"]["default"] = "IfNotPresent"
    variables["namespace"]["default"] = JOB_NAMESPACE
    variables["env"]["default"] = {
        "ORCHBENCH_HOME": ORCHBENCH_HOME,
        # shared_ml's step lines go to the task-run logs only from loggers named here.
        "PREFECT_LOGGING_EXTRA_LOGGERS": SHARED_ML_LOGGER,
    }
    for name, value in RESOURCE_DEFAULTS.items():
        variables[name]["default"] = value

    job = template["job_configuration"]["job_manifest"]
    pod = job["spec"]["template"]["spec"]
    job["spec"]["completions"] = pod.pop("completions", 1)
    job["spec"]["parallelism"] = pod.pop("parallelism", 1)
    pod["securityContext"] = {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": 0,
        "fsGroup": 0,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = pod["containers"][0]
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    # Not optional: a flow run without the store would keep its records in the pod.
    container["envFrom"] = [{"secretRef": {"name": ARTIFACT_SECRET}}]
    return template


def template_json() -> str:
    return json.dumps(base_job_template(), indent=2, sort_keys=True) + "\n"


def rendered_job_manifest(
    template: dict[str, Any] | None = None, job_variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The Job the worker would submit for a flow run, with the template's defaults and a
    deployment's ``job_variables`` over them (merged as the worker merges them)."""
    import asyncio
    from uuid import uuid4

    from prefect.client.schemas.objects import FlowRun
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    template = template or base_job_template()
    # The worker's own code path. The template references no blocks or Prefect variables,
    # so the client is never used: a placeholder keeps this offline.
    configuration = asyncio.run(
        KubernetesWorkerJobConfiguration.from_template_and_values(
            template, job_variables or {}, client=_NO_CLIENT
        )
    )
    flow_run = FlowRun(id=uuid4(), name="orchbench-example", flow_id=uuid4())
    configuration.prepare_for_flow_run(flow_run)
    return configuration.job_manifest


class _NoClient:
    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"rendering the job template tried to call the Prefect API ({name})")


_NO_CLIENT: Any = _NoClient()


def validate_manifest(manifest: dict[str, Any], k8s_version: str = K8S_VERSION) -> None:
    """Raise ``kubernetes_validate.ValidationError`` unless the manifest is a valid
    Kubernetes object of ``k8s_version`` (strict: unknown fields are errors)."""
    import kubernetes_validate

    kubernetes_validate.validate(manifest, k8s_version, strict=True)


def _renders_a_valid_job(current: str) -> str:
    validate_manifest(rendered_job_manifest(json.loads(current)))
    return f" and renders a valid Kubernetes {K8S_VERSION} Job"


def main(argv: list[str] | None = None) -> int:
    return write_or_check("prefect", TEMPLATE_PATH, template_json, argv, _renders_a_valid_job)


if __name__ == "__main__":
    sys.exit(main())
