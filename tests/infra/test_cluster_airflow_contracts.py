"""Contracts between the Airflow release infra declares and the task pod template it ships.

The chart renders ``podTemplate`` with ``tpl``, so the template names the chart's objects
with the chart's own helpers. Here those helpers are evaluated the way chart 1.22.0 does,
for the release name and values infra produces, and the rendered pod is checked against
what the chart and infra create: the ConfigMap it mounts, the image it runs, the Secret it
reads, its writable home. No ``helm`` binary here: the end-to-end workflow renders the real
chart (``helm template``) with the same values.

Naming rules (apache/airflow chart, helm-chart/1.22.0):
- ``airflow_config`` is ``<fullname>-config``; ``fullname`` is the release name unless
  ``useStandardNaming`` (default false, values.schema.json), else ``fullnameOverride`` or
  ``<release>-airflow`` (the release itself when it contains "airflow"). Since chart 1.11.0
  (#31066, "ConfigMap {release}-airflow-config to {release}-config"); upstream's
  helm-tests test_pod_template_file.py::test_mount_airflow_cfg expects "release-name-config".
- ``pod_template_image`` is ``images.pod_template.repository`` (default
  ``defaultAirflowRepository``) ``:`` ``images.pod_template.tag`` (default ``defaultAirflowTag``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import kubernetes_validate
import pytest
import yaml

from infra.components.airflow import (
    MIGRATIONS_WAIT_TIMEOUT_S,
    POD_TEMPLATE_PATH,
    RELEASE_NAME,
    RELEASE_TIMEOUT_S,
    airflow_values,
    read_pod_template,
)
from infra.components.common import ARTIFACT_SECRET_NAME
from infra.footprint import load_stack_file
from tests.infra.mocking import KUBERNETES_VERSION

CHART_NAME = "airflow"
EXPRESSION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")


def chart_fullname(release: str, values: dict[str, Any]) -> str:
    if not values.get("useStandardNaming"):
        return release
    if values.get("fullnameOverride"):
        return values["fullnameOverride"][:63].rstrip("-")
    name = values.get("nameOverride") or CHART_NAME
    return (release if name in release else f"{release}-{name}")[:63].rstrip("-")


def chart_config_map(release: str, values: dict[str, Any]) -> str:
    """The name chart 1.22.0 gives its airflow.cfg ConfigMap (the ``airflow_config`` helper)."""
    return f"{chart_fullname(release, values)}-config"


def pod_template_image(values: dict[str, Any]) -> str:
    images = values.get("images", {}).get("pod_template", {})
    repository = images.get("repository") or values["defaultAirflowRepository"]
    return f"{repository}:{images.get('tag') or values['defaultAirflowTag']}"


def render(template: str, release: str, values: dict[str, Any]) -> dict[str, Any]:
    """The pod as the chart's ``tpl`` would render it. Only the helpers above are known: a
    template that starts using another one must add its rule here, checked upstream."""
    helpers = {
        'include "airflow_config" .': chart_config_map(release, values),
        'include "pod_template_image" .': pod_template_image(values),
    }

    def evaluate(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression not in helpers:
            raise AssertionError(f"pod template uses {match.group(0)!r}; no rule for it here")
        return helpers[expression]

    return yaml.safe_load(EXPRESSION.sub(evaluate, template))


def _stack_values(stack: str) -> tuple[dict[str, Any], Any]:
    config = load_stack_file(stack)
    return airflow_values(config.airflow, config.image, read_pod_template()), config


@pytest.fixture(scope="module")
def template() -> str:
    text = read_pod_template(POD_TEMPLATE_PATH)
    assert text is not None, f"{POD_TEMPLATE_PATH} missing: run the manifest generator"
    return text


def _config_maps(pod: dict[str, Any]) -> set[str]:
    return {v["configMap"]["name"] for v in pod["spec"]["volumes"] if "configMap" in v}


@pytest.mark.parametrize("stack", ["kind", "eks"])
@pytest.mark.parametrize("release", [RELEASE_NAME, "orchbench-af"])
@pytest.mark.parametrize("standard_naming", [False, True])
def test_task_pods_mount_the_config_map_the_chart_creates(
    template, stack, release, standard_naming
):
    values, _ = _stack_values(stack)
    values = {**values, "useStandardNaming": standard_naming}
    pod = render(template, release, values)
    assert _config_maps(pod) == {chart_config_map(release, values)}
    # The mount is airflow.cfg itself, at the AIRFLOW_HOME the pod declares.
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert {
        m["mountPath"] for m in container["volumeMounts"] if m.get("subPath") == "airflow.cfg"
    } == {f"{env['AIRFLOW_HOME']}/airflow.cfg"}


def test_infra_release_config_map_name(template):
    """For the record: what the pod mounts on the release infra installs."""
    values, _ = _stack_values("kind")
    assert "useStandardNaming" not in values  # the chart default (false) applies
    assert _config_maps(render(template, RELEASE_NAME, values)) == {f"{RELEASE_NAME}-config"}


@pytest.mark.parametrize("stack", ["kind", "eks"])
def test_task_pods_run_the_stacks_airflow_image(template, stack):
    values, config = _stack_values(stack)
    (container,) = render(template, RELEASE_NAME, values)["spec"]["containers"]
    assert container["image"] == config.image.ref("airflow")


@pytest.mark.parametrize("stack", ["kind", "eks"])
def test_rendered_pod_is_valid_kubernetes(template, stack):
    values, _ = _stack_values(stack)
    pod = render(template, RELEASE_NAME, values)
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def test_task_pods_read_the_artifact_secret_infra_creates(template):
    values, _ = _stack_values("kind")
    (container,) = render(template, RELEASE_NAME, values)["spec"]["containers"]
    secrets = {e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e}
    assert secrets == {ARTIFACT_SECRET_NAME}
    # The chart's own components read the same Secret (extraEnvFrom).
    assert f"name: {ARTIFACT_SECRET_NAME}" in values["extraEnvFrom"]


def test_task_pods_have_a_fresh_writable_home(template):
    values, _ = _stack_values("kind")
    pod = render(template, RELEASE_NAME, values)
    (container,) = pod["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    empty_dirs = {v["name"] for v in pod["spec"]["volumes"] if "emptyDir" in v}
    writable = {m["mountPath"] for m in container["volumeMounts"] if m["name"] in empty_dirs}
    for variable in ("HOME", "ORCHBENCH_HOME", "AIRFLOW_HOME"):
        assert env[variable] in writable, f"{variable}={env[variable]} is not a writable volume"


def test_task_pods_skip_the_official_entrypoints_database_check(template):
    """apache/airflow's /entrypoint waits for the metadata DB (`airflow db check`, one more
    Airflow CLI start per task) unless CONNECTION_CHECK_MAX_COUNT is 0
    (scripts/docker/entrypoint_prod.sh); an Airflow 3 task pod talks to the API server only."""
    values, _ = _stack_values("kind")
    (container,) = render(template, RELEASE_NAME, values)["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env.get("CONNECTION_CHECK_MAX_COUNT") == "0"


def test_migrations_wait_outlasts_the_chart_default_within_the_release_timeout(schemas_dir):
    schema = json.loads((schemas_dir / "airflow-chart-1.22.0.values.schema.json").read_text())
    key = schema["properties"]["images"]["properties"]["migrationsWaitTimeout"]
    values, _ = _stack_values("kind")
    wait = values["images"]["migrationsWaitTimeout"]
    assert wait == MIGRATIONS_WAIT_TIMEOUT_S
    assert key["default"] < wait < RELEASE_TIMEOUT_S
