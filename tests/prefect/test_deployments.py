"""Deployment, schedule, manual runs (CLI and API), the event trigger and backfill."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.environments import tool_bin
from benchmarks.tools.prefect.adapter import PrefectAdapter
from benchmarks.tools.prefect.client import PrefectClient, parse_time
from benchmarks.tools.prefect.services import ServicesState, prefect_env
from shared_ml.config import load_config
from shared_ml.registry import ModelRegistry

DEPLOYMENT = ("orchbench-ml", "orchbench-ml")
RUN_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def deployment(client: PrefectClient) -> dict[str, Any]:
    return client.read_deployment(*DEPLOYMENT)


def test_deployment_has_the_config_cron_schedule(
    client: PrefectClient, deployment: dict[str, Any], config_path: Path
) -> None:
    schedules = client.read_deployment_schedules(deployment["id"])
    expected = yaml.safe_load(config_path.read_text())["schedule"]
    assert [s["schedule"]["cron"] for s in schedules] == [expected]
    assert schedules[0]["schedule"]["timezone"] == "UTC"
    assert deployment["entrypoint"] == "pipelines.prefect.flow.ml_pipeline"
    assert deployment["work_pool_name"] == "orchbench-process"


def test_deployment_has_the_data_updated_event_trigger(
    client: PrefectClient, deployment: dict[str, Any]
) -> None:
    [automation] = [a for a in client.read_automations() if a["name"] == "on-data-updated"]
    assert automation["trigger"]["expect"] == ["orchbench.data.updated"]
    [action] = automation["actions"]
    assert action["type"] == "run-deployment"
    assert action["deployment_id"] == deployment["id"]


@pytest.fixture(scope="module")
def triggered_runs(
    client: PrefectClient, deployment: dict[str, Any], services: ServicesState
) -> dict[str, str]:
    """Start one run by emitting the event through the API and one with the Prefect CLI;
    the worker runs both at once. Returns their flow run ids."""
    since = datetime.now(UTC)
    client.emit_event("orchbench.data.updated", "orchbench.dataset.breast_cancer")
    cli = subprocess.run(
        [
            str(tool_bin("prefect", "prefect")),
            "deployment",
            "run",
            "/".join(DEPLOYMENT),
            "--param",
            "run_id=prefect-manual-cli",
        ],
        env=prefect_env(Path(services.home), services.api_url),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    runs: dict[str, str] = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(runs) < 2:
        for run in client.read_flow_runs(deployment_id=deployment["id"]):
            created_by = (run.get("created_by") or {}).get("type")
            if parse_time(run["created"]) >= since and created_by == "AUTOMATION":
                runs["event"] = run["id"]
            if run["parameters"].get("run_id") == "prefect-manual-cli":
                runs["cli"] = run["id"]
        time.sleep(0.5)
    assert set(runs) == {"event", "cli"}, f"runs found: {runs}"
    return runs


def test_event_through_the_api_starts_a_deployment_run(
    client: PrefectClient, triggered_runs: dict[str, str]
) -> None:
    flow_run = client.wait_for_flow_run(triggered_runs["event"], timeout_s=RUN_TIMEOUT_S)
    assert flow_run["state"]["type"] == "COMPLETED", flow_run["state"]
    assert flow_run["parameters"]["config"]["model"]["estimator"] == "logistic_regression"


def test_manual_run_through_the_prefect_cli_completes(
    client: PrefectClient, triggered_runs: dict[str, str]
) -> None:
    flow_run = client.wait_for_flow_run(triggered_runs["cli"], timeout_s=RUN_TIMEOUT_S)
    assert flow_run["state"]["type"] == "COMPLETED", flow_run["state"]
    names = {t["name"] for t in client.wait_for_task_runs(triggered_runs["cli"], expected=6)}
    assert len(names) == 6


def test_backfill_runs_each_past_date_once_and_is_idempotent_in_the_registry(
    deployment_adapter: PrefectAdapter, config_path: Path, client: PrefectClient
) -> None:
    dates = [date(2026, 1, 1), date(2026, 1, 2)]
    config = load_config(config_path)
    registry = ModelRegistry(config.storage.registry_root, config.name)
    versions_before = len(registry.read()["versions"])

    first = deployment_adapter.backfill(config_path, dates)
    assert [r.status for r in first] == ["success", "success"]
    assert [r.tool_details["logical_date"] for r in first] == ["2026-01-01", "2026-01-02"]
    flow_runs = [client.read_flow_run(r.tool_details["flow_run_id"]) for r in first]
    assert [f["parameters"]["logical_date"] for f in flow_runs] == ["2026-01-01", "2026-01-02"]
    assert [f["expected_start_time"][:10] for f in flow_runs] == ["2026-01-01", "2026-01-02"]
    versions_after = registry.read()["versions"]
    assert len(versions_after) <= versions_before + 1  # the same model: one version at most

    again = deployment_adapter.backfill(config_path, dates)
    assert [r.tool_details["flow_run_id"] for r in again] == [
        r.tool_details["flow_run_id"] for r in first
    ]
    assert registry.read()["versions"] == versions_after
    registrations = [r.registry for r in first]
    assert all(reg.get("version") for reg in registrations)
    assert json.dumps(registrations[1]).count("already registered") == 1


def test_kubernetes_work_pool_with_the_committed_template_is_accepted_by_the_server(
    client: PrefectClient,
) -> None:
    from pipelines.prefect.k8s import POOL_NAME, TEMPLATE_PATH

    template = json.loads(TEMPLATE_PATH.read_text())
    client.create_work_pool(POOL_NAME, "kubernetes", template)
    stored = client.read_work_pool(POOL_NAME)
    assert stored["type"] == "kubernetes"
    assert stored["base_job_template"]["variables"]["properties"]["image"]["default"] == (
        "orchbench/shared-ml:0.1.0-prefect"
    )
