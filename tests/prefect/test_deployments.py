"""Deployment, schedules (cron and presets) and a scheduled run that fires, manual runs
(CLI and API), the event trigger, and backfill by partition: against the real server and
process worker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.environments import REPO_ROOT, tool_bin
from benchmarks.tools.prefect.adapter import PrefectAdapter
from benchmarks.tools.prefect.client import TERMINAL_FLOW_STATES, PrefectClient, parse_time
from benchmarks.tools.prefect.services import ServicesState, prefect_env
from shared_ml.config import PipelineConfig, load_config
from shared_ml.records import RunRecord
from shared_ml.registry import ModelRegistry
from shared_ml.runner import run_pipeline
from shared_ml.spec import PIPELINE

DEPLOYMENT = ("orchbench-ml", "orchbench-ml")
SCHEDULED_DEPLOYMENT = "orchbench-ml-scheduled"
RUN_TIMEOUT_S = 300


def _day(timestamp: str) -> date:
    return parse_time(timestamp).astimezone(UTC).date()


def _poll(what: str, probe: Any, timeout_s: float = 120.0) -> Any:
    """Call ``probe`` every half second until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what}: not seen within {timeout_s:.0f} s")


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
    assert deployment["entrypoint"] == "pipelines.prefect.pipeline.ml_pipeline"
    assert deployment["work_pool_name"] == "orchbench-process"


@pytest.mark.parametrize("preset", ["@hourly", "@daily", "@weekly"])
def test_prefect_cron_schedules_expand_the_presets_as_croniter_does(preset: str) -> None:
    """The server's own schedule model (what its scheduler runs) on the config's preset."""
    from croniter import croniter
    from prefect.server.schemas.schedules import CronSchedule

    from pipelines.prefect.deploy import config_schedules

    [schedule] = config_schedules({"schedule": preset})
    start = datetime(2026, 1, 3, 5, 30, tzinfo=UTC)
    server = CronSchedule(cron=schedule.cron, timezone=schedule.timezone)
    dates = asyncio.run(server.get_dates(n=3, start=start))
    reference = croniter(preset, start)
    assert [d.astimezone(UTC) for d in dates] == [
        reference.get_next(datetime).astimezone(UTC) for _ in range(3)
    ]


@pytest.fixture(scope="module")
def scheduled(
    services: ServicesState, client: PrefectClient, config_path: Path, daily_config_path: Path
) -> Iterator[dict[str, Any]]:
    """A deployment of its own, first with configs/daily.yaml's `@daily` (the scheduler
    must plan its runs at midnight UTC), then with a 5 s interval schedule, until one of
    its scheduled runs has started; then paused (no further run), and what started awaited."""
    from prefect.schedules import Interval
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pipelines.prefect.deploy import DEFAULT_POOL, deploy_pipeline

    def auto_scheduled(deployment_id: str) -> list[dict[str, Any]]:
        runs = client.read_flow_runs(deployment_id=deployment_id)
        return [r for r in runs if r["auto_scheduled"]]

    facts: dict[str, Any] = {}
    with temporary_settings({PREFECT_API_URL: services.api_url}):
        deployment_id = deploy_pipeline(
            str(daily_config_path), DEFAULT_POOL, SCHEDULED_DEPLOYMENT, event_trigger=False
        )
        try:
            facts["preset_schedules"] = client.read_deployment_schedules(deployment_id)
            facts["preset_runs"] = _poll("@daily runs", lambda: auto_scheduled(deployment_id))
            interval = Interval(5, anchor_date=datetime.now(UTC), timezone="UTC")
            deploy_pipeline(
                str(config_path),
                DEFAULT_POOL,
                SCHEDULED_DEPLOYMENT,
                schedules=[interval],
                event_trigger=False,
            )
            # The @daily runs were in the future: the update deleted them, none started.
            _poll(
                "a scheduled run leaving SCHEDULED",
                lambda: [
                    r for r in auto_scheduled(deployment_id) if r["state"]["type"] != "SCHEDULED"
                ],
                timeout_s=180,
            )
            client.pause_deployment(deployment_id)  # deletes the runs not yet started
            facts["runs"] = [
                client.wait_for_flow_run(r["id"], timeout_s=RUN_TIMEOUT_S)
                for r in auto_scheduled(deployment_id)
            ]
            yield facts
        finally:
            client.pause_deployment(deployment_id)
            for run in client.read_flow_runs(deployment_id=deployment_id):
                if run["state"]["type"] not in TERMINAL_FLOW_STATES | {"SCHEDULED"}:
                    client.wait_for_flow_run(run["id"], timeout_s=RUN_TIMEOUT_S)
            client.delete_deployment(deployment_id)


def test_daily_preset_is_the_deployment_schedule_and_runs_are_planned_at_midnight(
    scheduled: dict[str, Any],
) -> None:
    [schedule] = scheduled["preset_schedules"]
    assert schedule["schedule"]["cron"] == "@daily"
    assert schedule["schedule"]["timezone"] == "UTC"
    planned = sorted(parse_time(r["expected_start_time"]) for r in scheduled["preset_runs"])
    assert all(t.astimezone(UTC).time() == datetime.min.time() for t in planned), planned
    assert all(b - a == timedelta(days=1) for a, b in pairwise(planned))


def test_a_scheduled_run_fires_and_its_record_carries_its_scheduled_date(
    scheduled: dict[str, Any], config_path: Path
) -> None:
    runs_root = Path(load_config(config_path).storage.runs_root)
    assert scheduled["runs"]
    for flow_run in scheduled["runs"]:
        assert flow_run["auto_scheduled"] and flow_run["created_by"]["type"] == "SCHEDULE"
        assert flow_run["state"]["type"] == "COMPLETED", flow_run["state"]
        # The flow's own run record (written by the flow run; run id from its id).
        record = RunRecord.model_validate_json(
            (runs_root / f"prefect-{flow_run['id']}" / "run.json").read_text()
        )
        scheduled_day = _day(flow_run["expected_start_time"])
        assert record.status == "success"
        assert record.logical_date == scheduled_day
        assert record.data_interval is not None
        assert record.data_interval[0].date() == scheduled_day


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
    assert flow_run["parameters"]["config"]["name"] == "orchbench-ml"


def test_manual_run_through_the_prefect_cli_completes(
    client: PrefectClient, triggered_runs: dict[str, str], config_path: Path
) -> None:
    flow_run = client.wait_for_flow_run(triggered_runs["cli"], timeout_s=RUN_TIMEOUT_S)
    assert flow_run["state"]["type"] == "COMPLETED", flow_run["state"]
    config = load_config(config_path)
    task_runs = client.wait_for_task_runs(triggered_runs["cli"])
    assert {t["name"] for t in task_runs} == set(PIPELINE.expand(config.candidate_names))
    record = json.loads(
        (Path(config.storage.runs_root) / "prefect-manual-cli" / "run.json").read_text()
    )
    # A manual run is scheduled "now": it stands for the day it was created.
    assert record["logical_date"] == _day(flow_run["expected_start_time"]).isoformat()


def test_worker_flow_runs_ship_shared_ml_lines_to_the_task_run_logs(
    client: PrefectClient, triggered_runs: dict[str, str]
) -> None:
    """A flow run the process worker started (its subprocess inherits the worker's env and
    the deployment's job variables) stores shared_ml's step lines with each task run."""
    flow_run_id = triggered_runs["cli"]
    client.wait_for_flow_run(flow_run_id, timeout_s=RUN_TIMEOUT_S)
    task_runs = {t["name"]: t["id"] for t in client.wait_for_task_runs(flow_run_id)}

    def ingest_lines() -> list[str]:
        found = [
            line["message"]
            for line in client.read_logs(flow_run_id=flow_run_id)
            if line["name"].startswith("shared_ml") and line["task_run_id"] == task_runs["ingest"]
        ]
        # The flow-run process sends its lines in batches; the last may land after the
        # run is already Completed (seen under load): wait for the step's last line.
        return found if any("ingest succeeded" in m for m in found) else []

    ingest = _poll("ingest's success line among the task run's logs", ingest_lines, 60)
    assert any(m.startswith("[prefect-manual-cli ingest attempt 1] ingest started") for m in ingest)
    assert any("peak RSS" in m for m in ingest if "ingest succeeded" in m)
    deployment = client.read_deployment(*DEPLOYMENT)
    assert deployment["job_variables"]["env"]["PREFECT_LOGGING_EXTRA_LOGGERS"] == "shared_ml"


# --- backfill by partition ------------------------------------------------------------
@pytest.fixture(scope="module")
def daily_config(daily_config_path: Path) -> PipelineConfig:
    return load_config(daily_config_path)


@pytest.fixture(scope="module")
def plain_backfill(
    daily_config: PipelineConfig,
    tmp_path_factory: pytest.TempPathFactory,
    backfill_dates: list[date],
) -> tuple[list[RunRecord], ModelRegistry]:
    """The plain runner over the same dates, in order, on storage of its own."""
    root = tmp_path_factory.mktemp("plain-backfill")
    storage = daily_config.storage.model_copy(
        update={
            "artifact_root": str(root / "artifacts"),
            "registry_root": str(root / "registry"),
            "runs_root": str(root / "runs"),
        }
    )
    config = daily_config.model_copy(update={"storage": storage})
    records = [run_pipeline(config, run_id=f"local-{d}", logical_date=d) for d in backfill_dates]
    return records, ModelRegistry(storage.registry_root, config.name)


def test_backfill_is_one_deployment_run_per_date_scheduled_at_that_date(
    backfill: list[RunRecord],
    client: PrefectClient,
    backfill_dates: list[date],
) -> None:
    assert [r.status for r in backfill] == ["success"] * len(backfill_dates)
    assert [r.logical_date for r in backfill] == backfill_dates
    assert [r.data_interval[0].date() for r in backfill] == backfill_dates
    flow_runs = [client.read_flow_run(r.tool_details["flow_run_id"]) for r in backfill]
    assert all(f["deployment_id"] and "backfill" in f["tags"] for f in flow_runs)
    days = [d.isoformat() for d in backfill_dates]
    assert [f["parameters"]["logical_date"] for f in flow_runs] == days
    assert [_day(f["expected_start_time"]) for f in flow_runs] == backfill_dates
    # In date order: each run started after the one before it had ended.
    for before, after in pairwise(flow_runs):
        assert parse_time(before["end_time"]) <= parse_time(after["start_time"])


def test_each_date_equals_the_plain_runner_on_that_date(
    backfill: list[RunRecord], plain_backfill: tuple[list[RunRecord], ModelRegistry]
) -> None:
    baseline, _ = plain_backfill
    for record, plain in zip(backfill, baseline, strict=True):
        assert plain.status == "success"
        assert record.selected_candidate == plain.selected_candidate, record.logical_date
        assert record.metrics == plain.metrics, record.logical_date
        assert record.prediction_hash == plain.prediction_hash, record.logical_date
    # Each date read its own partition: no two dates have the same numbers.
    assert len({json.dumps(r.metrics, sort_keys=True) for r in backfill}) == len(backfill)


def test_registry_records_the_promotion_decision_per_date(
    backfill: list[RunRecord],
    plain_backfill: tuple[list[RunRecord], ModelRegistry],
    daily_config: PipelineConfig,
    backfill_dates: list[date],
) -> None:
    _, plain_registry = plain_backfill
    registry = ModelRegistry(daily_config.storage.registry_root, daily_config.name)

    def decisions(index: dict[str, Any]) -> list[tuple]:
        return [
            (v["logical_date"], v["candidate"], v["promoted"], v["reason"], v["champion_before"])
            for v in index["versions"]
        ]

    assert [v["logical_date"] for v in registry.read()["versions"]] == [
        d.isoformat() for d in backfill_dates
    ]
    assert decisions(registry.read()) == decisions(plain_registry.read())
    assert registry.read()["champion"] == plain_registry.read()["champion"]
    assert [r.registry.get("promoted") for r in backfill] == [
        v["promoted"] for v in plain_registry.read()["versions"]
    ]


def test_backfill_runs_each_past_date_once_and_is_idempotent_in_the_registry(
    backfill: list[RunRecord],
    deployment_adapter: PrefectAdapter,
    daily_config_path: Path,
    backfill_dates: list[date],
) -> None:
    config = load_config(daily_config_path)
    registry = ModelRegistry(config.storage.registry_root, config.name)
    versions = registry.read()["versions"]
    artifacts = sorted(p for p in Path(config.storage.artifact_root).rglob("*") if p.is_file())

    again = deployment_adapter.backfill(daily_config_path, backfill_dates)
    assert [r.tool_details["flow_run_id"] for r in again] == [
        r.tool_details["flow_run_id"] for r in backfill
    ]
    assert all(r.tool_details["reused_flow_run"] for r in again)
    assert [r.logical_date for r in again] == backfill_dates
    assert [r.prediction_hash for r in again] == [r.prediction_hash for r in backfill]
    assert registry.read()["versions"] == versions
    assert sorted(p for p in Path(config.storage.artifact_root).rglob("*") if p.is_file()) == (
        artifacts
    )

    # The dates' first run of days, as a user types it: `orchbench backfill --json` (its
    # adapter finds the session's services as `orchbench run` does, by their home).
    first, second = backfill_dates[:2]
    assert second - first == timedelta(days=1)  # --start/--end take a range
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.cli",
            "backfill",
            "--tool",
            "prefect",
            "--config",
            str(daily_config_path),
            "--start",
            first.isoformat(),
            "--end",
            second.isoformat(),
            "--json",
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "ORCHBENCH_DEBUG": "1"},  # a traceback, should it fail
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    by_cli = [RunRecord.model_validate(r) for r in json.loads(done.stdout)]
    assert [r.logical_date for r in by_cli] == [first, second]
    assert all(r.tool_details["reused_flow_run"] for r in by_cli)
    assert [r.tool_details["flow_run_id"] for r in by_cli] == [
        r.tool_details["flow_run_id"] for r in backfill[:2]
    ]
    assert [r.prediction_hash for r in by_cli] == [r.prediction_hash for r in backfill[:2]]
    assert registry.read()["versions"] == versions


def test_kubernetes_work_pool_with_the_committed_template_is_accepted_by_the_server(
    client: PrefectClient,
) -> None:
    from pipelines.prefect.manifest import POOL_NAME, TEMPLATE_PATH

    template = json.loads(TEMPLATE_PATH.read_text())
    client.create_work_pool(POOL_NAME, "kubernetes", template)
    stored = client.read_work_pool(POOL_NAME)
    assert stored["type"] == "kubernetes"
    assert stored["base_job_template"]["variables"]["properties"]["image"]["default"] == (
        "orchbench/shared-ml:0.1.0-prefect"
    )
