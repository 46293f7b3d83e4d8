"""The KubernetesExecutor worker pod, built in code and written to ``pod_template.yaml``.

The committed YAML is what the Airflow Helm chart's ``podTemplate`` value receives (the
infra program reads the file); ``tests/airflow/test_pod_template.py`` fails when it is
stale. Regenerate it, or check it, with::

    .venvs/airflow/bin/python -m pipelines.airflow.manifest [PATH]
    .venvs/airflow/bin/python -m pipelines.airflow.manifest --check [PATH]   # exit 1 if stale

The pod runs the shared_ml image's airflow variant as a non-root user, with requests and
limits, a read-only root filesystem and writable scratch volumes (``/tmp``, AIRFLOW_HOME,
and the home: ``$HOME`` = ``$ORCHBENCH_HOME``). Airflow requires the worker container to be
called ``base``. Per-step overrides (more memory for ``train``) are the ``executor_config``
pod overrides below, which the DAG attaches under KubernetesExecutor.

Names the chart decides are written as the chart's own helpers, not as literals: the chart
runs ``tpl`` on its ``podTemplate`` value (Apache Airflow chart 1.22.0, values.schema.json:
"podTemplate ... (templated)"), and its own default pod template names the same things
with the same helpers (chart/files/pod-template-file.kubernetes-helm-yaml). So the
ConfigMap is ``{{ include "airflow_config" . }}`` (``<release>-config`` at chart >= 1.11.0
with the default ``useStandardNaming: false``) and the image is the chart's
``images.pod_template`` (which infra sets per stack), whatever the release or registry.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import ApiClient
from kubernetes.client import models as k8s

from pipelines.manifest_cli import write_or_check

# Chart helpers, rendered by the chart's `tpl` (see above) for its release and values.
IMAGE = '{{ include "pod_template_image" . }}'
CHART_CONFIG_MAP = '{{ include "airflow_config" . }}'
KUBERNETES_VERSION = "1.33"  # the schema the template is validated against
TEMPLATE_PATH = Path(__file__).with_name("pod_template.yaml")
IMAGE_UID = 50000  # the image's user (Dockerfile) and the Airflow chart's default uid
IMAGE_GID = 0
AIRFLOW_HOME = "/opt/airflow"
# The image's ORCHBENCH_HOME (Dockerfile), here a fresh writable volume, and the pod's HOME
# too: the root filesystem is read-only, the image's own HOME included.
ORCHBENCH_HOME = "/home/orchbench"
ARTIFACT_SECRET = "orchbench-artifacts"  # S3 settings of the artifact store (infra)

DEFAULT_RESOURCES = {
    "requests": {"cpu": "250m", "memory": "512Mi"},
    "limits": {"cpu": "1", "memory": "1Gi"},
}
# Steps that need more than the default pod: sized for the synthetic benchmark data.
STEP_RESOURCES = {
    "train": {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    },
}


def _resources(spec: dict[str, dict[str, str]]) -> k8s.V1ResourceRequirements:
    return k8s.V1ResourceRequirements(requests=dict(spec["requests"]), limits=dict(spec["limits"]))


def worker_pod() -> k8s.V1Pod:
    scratch = [("tmp", "/tmp"), ("airflow-home", AIRFLOW_HOME), ("home", ORCHBENCH_HOME)]
    return k8s.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=k8s.V1ObjectMeta(
            name="orchbench-airflow-task",
            labels={"app.kubernetes.io/part-of": "orchbench", "orchbench/tool": "airflow"},
        ),
        spec=k8s.V1PodSpec(
            restart_policy="Never",
            automount_service_account_token=False,  # tasks talk to Airflow's API, not to k8s
            security_context=k8s.V1PodSecurityContext(
                run_as_non_root=True,
                run_as_user=IMAGE_UID,
                run_as_group=IMAGE_GID,
                fs_group=IMAGE_GID,
                seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
            ),
            containers=[
                k8s.V1Container(
                    name="base",  # KubernetesExecutor runs the task in the container named base
                    image=IMAGE,
                    image_pull_policy="IfNotPresent",  # kind-loaded or pulled once
                    working_dir="/opt/orchbench",  # relative config paths resolve here
                    env=[
                        k8s.V1EnvVar(name="AIRFLOW_HOME", value=AIRFLOW_HOME),
                        k8s.V1EnvVar(
                            name="AIRFLOW__CORE__DAGS_FOLDER",
                            value="/opt/orchbench/pipelines/airflow",
                        ),
                        k8s.V1EnvVar(name="ORCHBENCH_HOME", value=ORCHBENCH_HOME),
                        k8s.V1EnvVar(name="HOME", value=ORCHBENCH_HOME),
                        # The official image's /entrypoint runs `airflow db check` first while
                        # this is above 0 (scripts/docker/entrypoint_prod.sh): a task pod of
                        # Airflow 3 talks to the API server, never to the metadata DB.
                        k8s.V1EnvVar(name="CONNECTION_CHECK_MAX_COUNT", value="0"),
                    ],
                    # Required, as for Prefect's jobs and KFP's steps: without the store a
                    # task would keep its records on its own disk and still succeed.
                    env_from=[
                        k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=ARTIFACT_SECRET))
                    ],
                    resources=_resources(DEFAULT_RESOURCES),
                    security_context=k8s.V1SecurityContext(
                        allow_privilege_escalation=False,
                        read_only_root_filesystem=True,
                        run_as_non_root=True,
                        capabilities=k8s.V1Capabilities(drop=["ALL"]),
                    ),
                    volume_mounts=[
                        *(k8s.V1VolumeMount(name=name, mount_path=path) for name, path in scratch),
                        k8s.V1VolumeMount(
                            name="airflow-config",
                            mount_path=f"{AIRFLOW_HOME}/airflow.cfg",
                            sub_path="airflow.cfg",
                            read_only=True,
                        ),
                    ],
                )
            ],
            volumes=[
                *(
                    k8s.V1Volume(name=name, empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="1Gi"))
                    for name, _ in scratch
                ),
                k8s.V1Volume(
                    name="airflow-config",
                    config_map=k8s.V1ConfigMapVolumeSource(name=CHART_CONFIG_MAP),
                ),
            ],
        ),
    )


def step_pod_override(step: str) -> k8s.V1Pod | None:
    """``executor_config={"pod_override": ...}`` for a step that needs other resources."""
    if step not in STEP_RESOURCES:
        return None
    return k8s.V1Pod(
        spec=k8s.V1PodSpec(
            containers=[k8s.V1Container(name="base", resources=_resources(STEP_RESOURCES[step]))]
        )
    )


def as_dict(pod: k8s.V1Pod) -> dict[str, Any]:
    """The pod as a plain manifest (camelCase keys, no nulls)."""
    return ApiClient().sanitize_for_serialization(pod)


def render() -> str:
    header = (
        "# Generated by `python -m pipelines.airflow.manifest`; do not edit by hand.\n"
        "# KubernetesExecutor worker pod for the Airflow chart's podTemplate value; the chart\n"
        "# renders it with `tpl` (so no template braces here but the chart-helper values).\n"
    )
    return header + yaml.safe_dump(as_dict(worker_pod()), sort_keys=True)


def write(path: Path = TEMPLATE_PATH) -> Path:
    path.write_text(render(), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    return write_or_check("airflow", TEMPLATE_PATH, render, argv)


if __name__ == "__main__":
    sys.exit(main())
