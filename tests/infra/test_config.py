"""A bad stack config fails before any resource is declared, naming the key and the fix."""

from __future__ import annotations

import json
import runpy

import pulumi
import pytest

from infra.config import StackConfigError, load_stack_config, parse_stack_config
from infra.footprint import load_stack_file
from tests.infra.mocking import INFRA_DIR, STACKS, RecordingMocks, RecordingMonitor

VALID = {"orchbench:cluster": {"provider": "kind"}}


@pytest.mark.parametrize("stack", STACKS)
def test_committed_stacks_are_valid(stack):
    config = load_stack_file(stack)
    assert config.cluster.provider == stack
    assert config.airflow.chart_version == "1.22.0"
    assert config.airflow.airflow_version == "3.3.2"
    assert config.kubeflow.version == "2.17.0"


def test_defaults_are_pinned_and_enable_every_system():
    config = parse_stack_config(VALID)
    assert (config.airflow.enabled, config.prefect.enabled, config.kubeflow.enabled) == (
        True,
        True,
        True,
    )
    assert config.image.ref("airflow") == "orchbench/shared-ml:0.1.0-airflow"
    assert config.load_images_into_kind is True


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, ["orchbench:cluster", "required key is missing"]),
        ({"orchbench:cluster": {"provider": "minikube"}}, ["orchbench:cluster.provider", "'kind'"]),
        (
            {**VALID, "orchbench:airflow": {"chartVersion": "latest"}},
            ["orchbench:airflow.chartVersion", "exact version"],
        ),
        (
            {**VALID, "orchbench:airflow": {"chartVersion": "~1.22"}},
            ["orchbench:airflow.chartVersion", "pinned"],
        ),
        (
            {**VALID, "orchbench:storage": {"imageTag": "3-latest"}},
            ["orchbench:storage.imageTag", "floating tag"],
        ),
        (
            {**VALID, "orchbench:airflow": {"parallelism": "lots"}},
            ["orchbench:airflow.parallelism", "integer"],
        ),
        (
            {**VALID, "orchbench:airflow": {"chartVersoin": "1.22.0"}},
            ["orchbench:airflow.chartVersoin", "unknown key"],
        ),
        (
            {
                **VALID,
                "orchbench:prefect": {
                    "resources": {
                        "server": {
                            "cpuRequest": "2",
                            "memoryRequest": "1Gi",
                            "cpuLimit": "1",
                            "memoryLimit": "1Gi",
                        }
                    }
                },
            },
            ["orchbench:prefect.resources.server", "cpuLimit 1 is below cpuRequest 2"],
        ),
        (
            {
                **VALID,
                "orchbench:prefect": {
                    "resources": {
                        "worker": {
                            "cpuRequest": "1 core",
                            "memoryRequest": "1G",
                            "cpuLimit": "1",
                            "memoryLimit": "1Gi",
                        }
                    }
                },
            },
            ["cpuRequest: expected a CPU quantity", "memoryRequest: expected a memory quantity"],
        ),
        (
            {"orchbench:cluster": {"provider": "eks"}, "orchbench:image": {"loadIntoKind": True}},
            ["image.loadIntoKind needs cluster.provider=kind"],
        ),
        (
            {**VALID, "orchbench:prefect": {"namespace": "airflow"}},
            ["every system needs its own namespace"],
        ),
        (
            {"orchbench:cluster": {"provider": "eks", "eks": {"minNodes": 3, "desiredNodes": 2}}},
            ["orchbench:cluster.eks", "minNodes <= desiredNodes <= maxNodes"],
        ),
        ({**VALID, "orchbench:unknownSystem": {"enabled": True}}, ["orchbench:unknownSystem"]),
        (
            {
                **VALID,
                "orchbench:kubeflow": {
                    "defaultContainer": {
                        "cpuRequest": "100m",
                        "memoryRequest": "128Mi",
                        "cpuLimit": "500m",
                        "memoryLimit": "512Mi",
                    }
                },
            },
            ["orchbench:kubeflow", "at least cpuLimit 250m and memoryLimit 800Mi"],
        ),
    ],
)
def test_bad_config_names_the_key_and_what_was_expected(raw, expected):
    with pytest.raises(StackConfigError) as failure:
        parse_stack_config(raw)
    message = str(failure.value)
    assert message.startswith("invalid stack config:")
    for fragment in expected:
        assert fragment in message, message


def test_json_strings_from_the_engine_are_parsed_and_other_namespaces_ignored():
    config = parse_stack_config(
        {
            "orchbench:cluster": json.dumps({"provider": "existing", "existing": {"context": "x"}}),
            "aws:region": "eu-west-1",
        }
    )
    assert config.cluster.existing.context == "x"
    with pytest.raises(StackConfigError, match="orchbench:cluster: not valid JSON"):
        parse_stack_config({"orchbench:cluster": "{not json"})


def test_load_stack_config_reads_the_engine_config(monkeypatch):
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    pulumi.runtime.set_all_config(
        {
            "orchbench:cluster": json.dumps({"provider": "kind"}),
            "orchbench:airflow": json.dumps({"enabled": False}),
        }
    )
    try:
        config = load_stack_config()
    finally:
        pulumi.runtime.set_all_config({})
    assert config.cluster.provider == "kind"
    assert config.airflow.enabled is False


def test_main_fails_on_bad_config_before_declaring_any_resource(monkeypatch):
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(
        mocks, project="orchbench", stack="bad", preview=False, monitor=RecordingMonitor(mocks)
    )
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    pulumi.runtime.set_all_config(
        {
            "orchbench:cluster": json.dumps({"provider": "kind"}),
            "orchbench:airflow": json.dumps({"chartVersion": "latest"}),
        }
    )
    try:
        with pytest.raises(StackConfigError, match=r"orchbench:airflow\.chartVersion"):
            runpy.run_path(str(INFRA_DIR / "__main__.py"), run_name="__main__")
    finally:
        pulumi.runtime.set_all_config({})
    assert mocks.declared == []
