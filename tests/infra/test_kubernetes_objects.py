"""Every Kubernetes object the program builds itself, validated strictly for a pinned version."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from infra.components.storage import seaweedfs_deployment
from infra.config import parse_stack_config
from tests.infra.mocking import KUBERNETES_VERSION


def as_manifest(declared) -> dict:
    manifest = copy.deepcopy(declared.inputs)
    manifest.pop("__defaults", None)
    return manifest


def validate(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_pinned_version_is_supported_by_kubernetes_validate():
    assert kubernetes_validate.utils.major_minor(KUBERNETES_VERSION) in {
        kubernetes_validate.utils.major_minor(v) for v in kubernetes_validate.utils.all_versions()
    }


def test_every_object_we_build_is_valid(stack_run):
    objects = stack_run.mocks.kubernetes_objects()
    kinds = {d.inputs.get("kind") for d in objects if "kind" in d.inputs}
    if stack_run.stack == "kind":
        assert {
            "Namespace",
            "NetworkPolicy",
            "LimitRange",
            "Secret",
            "Deployment",
            "Service",
            "PersistentVolumeClaim",
        } <= kinds
    failures = []
    for declared in objects:
        if declared.typ == "pulumi:providers:kubernetes":
            continue
        try:
            validate(as_manifest(declared))
        except kubernetes_validate.ValidationError as error:
            failures.append(f"{declared.name} ({declared.typ}): {error.message}")
    assert not failures, "\n".join(failures)


def test_seaweedfs_deployment_is_valid():
    config = parse_stack_config({"orchbench:cluster": {"provider": "kind"}}).storage
    validate({"apiVersion": "apps/v1", "kind": "Deployment", **seaweedfs_deployment(config)})


def test_strict_validation_rejects_unknown_fields():
    """Guard: the validator must fail on a typo, or the test above proves nothing."""
    config = parse_stack_config({"orchbench:cluster": {"provider": "kind"}}).storage
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", **seaweedfs_deployment(config)}
    manifest["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(manifest)
