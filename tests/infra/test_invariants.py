"""Security and hygiene invariants, checked over everything both stacks declare."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from infra.components.airflow import fernet_key
from tests.infra.mocking import RELEASE, Declared, StackRun

# Chart defaults that must never reach a cluster (Airflow, Prefect, KFP, prefect basic auth).
KNOWN_DEFAULT_PASSWORDS = ("prefect-rocks", "postgres:postgres", "admin:pass", "minio123")
PASSWORD_LIKE_KEY = re.compile(
    r"(password|passwd|^pass$|secretkey$|^jwtsecret$|^fernetkey$|authstring$|apikey$|^token$)",
    re.IGNORECASE,
)
SENSITIVE_SECRET_KEYS = {
    "password",
    "postgres-password",
    "fernet-key",
    "jwt-secret",
    "api-secret-key",
    "connection",
    "connection-string",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "s3.json",
}
SYSTEM_NAMESPACES = {
    "kind": ["orchbench-storage", "airflow", "prefect", "kubeflow"],
    "eks": ["airflow", "prefect", "kubeflow"],
}


def walk(node: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """Yield (path, key, value) for every key in nested dicts and lists."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}.{key}" if path else str(key)
            yield child, str(key), value
            yield from walk(value, child)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")


def generated_values(run: StackRun) -> set[str]:
    values = run.mocks.random_values()
    values |= {fernet_key(v) for v in values if len(v) == 44 and v.endswith("=")}
    return values


def helm_values(run: StackRun) -> list[tuple[str, dict]]:
    return [(d.inputs["name"], d.inputs["values"]) for d in run.mocks.of_type(RELEASE)]


def secrets(run: StackRun) -> list[Declared]:
    return run.mocks.of_type("kubernetes:core/v1:Secret")


def pod_specs(run: StackRun) -> Iterator[tuple[str, dict]]:
    for declared in run.mocks.kubernetes_objects():
        spec = declared.inputs.get("spec", {})
        template = spec.get("template", {}).get("spec") if isinstance(spec, dict) else None
        if template:
            yield declared.name, template


# --- passwords -------------------------------------------------------------------------------


def test_no_chart_default_password_anywhere(stack_run):
    everything = json.dumps([d.inputs for d in stack_run.mocks.declared], default=str)
    for default in KNOWN_DEFAULT_PASSWORDS:
        assert default not in everything


def test_every_secret_value_is_generated_and_marked_secret(stack_run):
    generated = generated_values(stack_run)
    assert len(generated) >= 5
    for secret in secrets(stack_run):
        data = secret.inputs.get("stringData", {})
        if data:
            assert any(p.startswith("stringData") for p in secret.secret_paths), secret.name
        for key, value in data.items():
            if key in SENSITIVE_SECRET_KEYS:
                assert any(g in value for g in generated), f"{secret.name}.{key} is a literal"


def test_no_literal_password_in_any_input_or_helm_value(stack_run):
    generated = generated_values(stack_run)
    for declared in stack_run.mocks.declared:
        for path, key, value in walk(declared.inputs):
            if PASSWORD_LIKE_KEY.search(key) and isinstance(value, str) and value:
                assert any(g in value for g in generated), f"{declared.name}: {path}={value!r}"


def test_chart_password_defaults_are_overridden_by_secret_references(stack_run):
    values = dict(helm_values(stack_run))
    airflow = values["airflow"]
    assert airflow["postgresql"]["auth"]["postgresPassword"] == ""
    assert airflow["data"]["metadataConnection"]["pass"] == ""
    assert airflow["postgresql"]["auth"]["existingSecret"] == "airflow-postgresql"
    for key in ("fernetKeySecretName", "jwtSecretName", "apiSecretKeySecretName"):
        assert airflow[key]
    for key in ("fernetKey", "jwtSecret", "apiSecretKey"):
        assert key not in airflow
    assert airflow["data"]["metadataSecretName"] == "airflow-metadata"
    server = values["prefect-server"]
    assert server["postgresql"]["auth"]["password"] == ""
    assert server["postgresql"]["auth"]["existingSecret"] == server["secret"]["name"]
    assert server["secret"]["create"] is False
    declared_secret_names = {s.inputs["metadata"]["name"] for s in secrets(stack_run)}
    referenced = {
        airflow["data"]["metadataSecretName"],
        airflow["fernetKeySecretName"],
        airflow["jwtSecretName"],
        airflow["apiSecretKeySecretName"],
        airflow["postgresql"]["auth"]["existingSecret"],
        server["secret"]["name"],
    }
    assert referenced <= declared_secret_names


# --- images ----------------------------------------------------------------------------------


def _assert_pinned(where: str, tag: Any) -> None:
    assert isinstance(tag, str) and tag, f"{where}: no tag"
    assert "latest" not in tag, f"{where}: floating tag {tag!r}"


def test_every_image_is_pinned(stack_run):
    seen = 0
    for declared in stack_run.mocks.kubernetes_objects():
        for path, key, value in walk(declared.inputs):
            if key == "image" and isinstance(value, str):
                name, _, tag = value.rpartition(":")
                assert name, f"{declared.name}: {path}={value!r} has no tag"
                _assert_pinned(f"{declared.name}: {path}", tag)
                seen += 1
    for release, values in helm_values(stack_run):
        for path, key, value in walk(values):
            if key in ("tag", "prefectTag"):
                _assert_pinned(f"{release}: {path}", value)
                seen += 1
    assert seen >= 6
    values = dict(helm_values(stack_run))
    # Override the floating chart defaults (3-latest, 3-python3.11-kubernetes) explicitly.
    assert values["prefect-server"]["global"]["prefect"]["image"]["prefectTag"] == (
        "3.9.1-python3.11"
    )
    assert values["prefect-worker"]["worker"]["image"]["prefectTag"] == "0.1.0-prefect"
    assert values["airflow"]["images"]["airflow"]["tag"] == "0.1.0-airflow"


def test_every_chart_and_manifest_version_is_exact(stack_run):
    for release in stack_run.mocks.of_type(RELEASE):
        assert re.fullmatch(r"\d+\.\d+\.\d+", release.inputs["version"]), release.name
    for directory in stack_run.mocks.of_type("kubernetes:kustomize/v2:Directory"):
        assert directory.inputs["directory"].endswith("?ref=2.17.0")


# --- resources, exposure, privileges ------------------------------------------------------------


def _assert_sized(where: str, resources: Any) -> None:
    assert isinstance(resources, dict), f"{where}: no resources"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{where}: {kind} missing"


def test_every_container_has_requests_and_limits(stack_run):
    containers = 0
    for name, spec in pod_specs(stack_run):
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            _assert_sized(f"{name}/{container['name']}", container.get("resources"))
            containers += 1
    for release, values in helm_values(stack_run):
        for path, key, value in walk(values):
            if key == "resources":
                _assert_sized(f"{release}: {path}", value)
                containers += 1
    assert containers >= 10


def test_every_system_namespace_has_default_limits_and_isolation(stack_run):
    objects = stack_run.mocks.kubernetes_objects()
    limit_ranges = {
        d.inputs["metadata"]["namespace"] for d in objects if d.inputs.get("kind") == "LimitRange"
    }
    denied = {
        d.inputs["metadata"]["namespace"]
        for d in objects
        if d.inputs.get("kind") == "NetworkPolicy"
        and d.inputs["metadata"]["name"] == "default-deny-ingress"
        and d.inputs["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    }
    expected = set(SYSTEM_NAMESPACES[stack_run.stack])
    assert expected <= limit_ranges
    assert expected <= denied


def test_nothing_is_exposed_outside_the_cluster_by_default(stack_run):
    for declared in stack_run.mocks.kubernetes_objects():
        if declared.inputs.get("kind") == "Service":
            assert declared.inputs["spec"]["type"] == "ClusterIP"
    for release, values in helm_values(stack_run):
        for path, key, value in walk(values):
            assert not (key == "type" and value in ("LoadBalancer", "NodePort")), (
                f"{release}: {path}"
            )
    values = dict(helm_values(stack_run))
    assert values["airflow"]["apiServer"]["service"]["type"] == "ClusterIP"
    assert values["prefect-server"]["service"].get("type", "ClusterIP") == "ClusterIP"


def test_containers_run_as_non_root_without_privilege_escalation(stack_run):
    for name, spec in pod_specs(stack_run):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] > 0, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
    values = dict(helm_values(stack_run))
    contexts = {
        "airflow pod": values["airflow"]["securityContexts"]["pod"],
        "prefect server pod": values["prefect-server"]["server"]["podSecurityContext"],
        "prefect worker pod": values["prefect-worker"]["worker"]["podSecurityContext"],
    }
    for where, context in contexts.items():
        assert context["runAsNonRoot"] is True and context["runAsUser"] > 0, where
    containers = {
        "airflow": values["airflow"]["securityContexts"]["containers"],
        "prefect server": values["prefect-server"]["server"]["containerSecurityContext"],
        "prefect worker": values["prefect-worker"]["worker"]["containerSecurityContext"],
    }
    for where, context in containers.items():
        assert context["allowPrivilegeEscalation"] is False, where
        assert context["capabilities"] == {"drop": ["ALL"]}, where


def test_workers_have_only_namespaced_rbac(stack_run):
    values = dict(helm_values(stack_run))
    assert values["airflow"]["multiNamespaceMode"] is False
    assert values["airflow"]["workers"]["kubernetes"]["serviceAccount"] == {
        "automountServiceAccountToken": False
    }
    worker = values["prefect-worker"]
    assert worker["role"]["create"] is True and "extraPermissions" not in worker["role"]
    assert worker["worker"]["config"].get("jobNamespace") is None  # same namespace only
    assert values["prefect-server"]["server"]["automountServiceAccountToken"] is False
    # We never declare cluster-wide RBAC ourselves.
    kinds = {d.inputs.get("kind") for d in stack_run.mocks.kubernetes_objects()}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}


def test_helm_hook_strategy_is_explicit(stack_run):
    airflow = dict(helm_values(stack_run))["airflow"]
    assert airflow["migrateDatabaseJob"]["useHelmHooks"] is False
    assert airflow["createUserJob"]["enabled"] is False


@pytest.mark.parametrize("literal", ["hunter2-password"])
def test_the_literal_password_check_can_fail(stack_run, literal):
    """Guard: a hard-coded password under a password-like key is caught."""
    generated = generated_values(stack_run)
    planted = {"postgresql": {"auth": {"password": literal}}}
    offending = [
        path
        for path, key, value in walk(planted)
        if PASSWORD_LIKE_KEY.search(key)
        and isinstance(value, str)
        and value
        and not any(g in value for g in generated)
    ]
    assert offending == ["postgresql.auth.password"]


def test_charts_add_no_network_policies_of_their_own(stack_run):
    """Allow rules are a union: a chart's permissive policy would undo the default deny."""
    values = dict(helm_values(stack_run))
    assert values["airflow"]["networkPolicies"] == {"enabled": False}
    assert values["airflow"]["postgresql"]["networkPolicy"] == {"enabled": False}
    assert values["prefect-server"]["postgresql"]["networkPolicy"] == {"enabled": False}


def test_every_kubernetes_resource_uses_the_stack_cluster(stack_run):
    """Never the ambient kubeconfig: everything goes through the Cluster component's provider."""
    kubernetes = [d for d in stack_run.mocks.declared if d.typ.startswith("kubernetes:")]
    assert kubernetes
    for declared in kubernetes:
        assert declared.provider.split("::")[-2].startswith("cluster-k8s"), declared.name
