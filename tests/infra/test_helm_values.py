"""Helm values validated against each chart's own values.schema.json (as Helm would)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema
import pytest

from infra.components.airflow import airflow_values
from infra.components.prefect import server_values, worker_values
from infra.config import parse_stack_config
from tests.infra.mocking import RELEASE

SCHEMA_FILES = {
    "airflow": "airflow-chart-1.22.0.values.schema.json",
    "prefect-server": "prefect-server.values.schema.json",
    "prefect-worker": "prefect-worker.values.schema.json",
}
JOB_TEMPLATE = {
    "job_configuration": {
        "job_manifest": {"spec": {"template": {"spec": {"containers": [{"name": "prefect-job"}]}}}}
    },
    "variables": {"properties": {"image": {"type": "string"}}},
}


@cache
def _validator(path: Path):
    # Airflow declares draft-07; prefect-helm's generic "schema#" means the same to Helm.
    schema = json.loads(path.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture
def validate(schemas_dir):
    def check(chart: str, values: dict) -> None:
        errors = sorted(_validator(schemas_dir / SCHEMA_FILES[chart]).iter_errors(values), key=str)
        assert not errors, "\n".join(
            f"{chart}: {'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in errors
        )

    return check


def _config(stack: str):
    from infra.footprint import load_stack_file

    return load_stack_file(stack)


@pytest.mark.parametrize("stack", ["kind", "eks"])
def test_airflow_values_match_the_chart_schema(validate, stack):
    config = _config(stack)
    validate("airflow", airflow_values(config.airflow, config.image))
    validate("airflow", airflow_values(config.airflow, config.image, "kind: Pod\n"))


def test_airflow_values_with_every_option_on(validate):
    config = parse_stack_config(
        {
            "orchbench:cluster": {"provider": "kind"},
            "orchbench:airflow": {"triggerer": True, "parallelism": 64},
        }
    )
    validate("airflow", airflow_values(config.airflow, config.image))


@pytest.mark.parametrize("stack", ["kind", "eks"])
def test_prefect_values_match_the_chart_schemas(validate, stack):
    config = _config(stack)
    validate("prefect-server", server_values(config.prefect))
    validate("prefect-worker", worker_values(config.prefect, config.image))
    validate("prefect-worker", worker_values(config.prefect, config.image, JOB_TEMPLATE))


def test_values_passed_to_the_releases_match_the_schemas(validate, stack_run):
    for release in stack_run.mocks.of_type(RELEASE):
        validate(release.inputs["name"], release.inputs["values"])


@pytest.mark.parametrize(
    ("chart", "patch"),
    [
        ("airflow", {"executor": "celery"}),
        ("airflow", {"apiServer": {"noSuchKey": True}}),
        ("prefect-worker", {"worker": {"apiConfig": "server"}}),
        ("prefect-server", {"server": {"resources": {"requests": {"gpu": "1"}}}}),
    ],
)
def test_the_schemas_do_catch_bad_values(schemas_dir, chart, patch):
    """Guard against a validator that accepts anything."""
    config = _config("kind")
    base = {
        "airflow": lambda: airflow_values(config.airflow, config.image),
        "prefect-server": lambda: server_values(config.prefect),
        "prefect-worker": lambda: worker_values(config.prefect, config.image),
    }[chart]()

    def merge(target: dict, change: dict) -> None:
        for key, value in change.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                merge(target[key], value)
            else:
                target[key] = value

    merge(base, patch)
    errors = list(_validator(schemas_dir / SCHEMA_FILES[chart]).iter_errors(base))
    assert errors, f"{patch} should violate the {chart} schema"
