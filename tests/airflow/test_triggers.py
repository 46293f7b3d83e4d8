"""How runs start: the CLI with params, an asset event, the schedule, and a backfill by
partition over past dates."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest

from benchmarks.environments import tool_bin
from benchmarks.tools.airflow.adapter import AirflowAdapter
from benchmarks.tools.airflow.client import parse_time
from benchmarks.tools.airflow.runs import records_run_id as adapter_records_run_id
from benchmarks.tools.airflow.services import airflow_env
from pipelines.airflow.tasks import INPUT_ASSET_NAME
from pipelines.airflow.tasks import records_run_id as dag_records_run_id
from shared_ml.config import StorageConfig
from shared_ml.records import RunRecord, collect_run_record
from shared_ml.runner import run_pipeline
from shared_ml.spec import PIPELINE, parse_task_key
from tests.airflow.conftest import DAILY_CONFIG, DEFAULT_CONFIG, ML_DAG, AirflowTestInstance

pytestmark = pytest.mark.slow


def _record(airflow: AirflowTestInstance, run_id: str):
    config = airflow.config()
    return collect_run_record(
        runs_root=config.storage.runs_root,
        run_id=dag_records_run_id(run_id),
        tool="airflow",
        pipeline=ML_DAG,
        config_fingerprint=config.ml_fingerprint(),
        seed=config.seed,
    )


def test_adapter_and_dag_agree_on_record_folders() -> None:
    for run_id in ("airflow-20250101T000000-abcd", "backfill__2025-01-02T03:00:00+00:00"):
        assert adapter_records_run_id(run_id) == dag_records_run_id(run_id)


def test_cli_trigger_with_a_seed_param(airflow: AirflowTestInstance) -> None:
    """`airflow dags trigger --conf` overrides the seed; the result equals the baseline
    with that seed (and differs from the config's own seed)."""
    run_id = f"test-cli-{uuid.uuid4().hex[:8]}"
    conf = {"config_path": str(DEFAULT_CONFIG), "seed": 7}
    done = subprocess.run(
        [
            str(tool_bin("airflow", "airflow")),
            "dags",
            "trigger",
            ML_DAG,
            "--run-id",
            run_id,
            "--conf",
            json.dumps(conf),
        ],
        env=airflow_env(airflow.services.settings),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run = airflow.client.wait_for_run(ML_DAG, run_id, timeout_s=420)
    assert run["state"] == "success" and run["run_type"] == "manual"
    record = _record(airflow, run_id)
    assert {s.step: s.outcome for s in record.steps}["register"] == "success"
    seeded = run_pipeline(airflow.config(DEFAULT_CONFIG, seed=7), run_id=f"baseline-{run_id}")
    default = airflow.config(DEFAULT_CONFIG)
    assert record.prediction_hash == seeded.prediction_hash
    assert record.metrics == seeded.metrics
    assert default.seed != 7


def test_input_asset_event_starts_a_run(airflow: AirflowTestInstance) -> None:
    client = airflow.client
    asset = client.asset_by_name(INPUT_ASSET_NAME)
    assert ML_DAG in {d["dag_id"] for d in asset["scheduled_dags"]}
    before = {r["dag_run_id"] for r in client.dag_runs(ML_DAG, run_type=["asset_triggered"])}
    event = client.create_asset_event(asset["id"], extra={"reason": "new input data (test)"})
    assert event["asset_id"] == asset["id"]

    def new_run() -> dict | None:
        runs = client.dag_runs(ML_DAG, run_type=["asset_triggered"])
        fresh = [r for r in runs if r["dag_run_id"] not in before]
        return fresh[0] if fresh else None

    run = client.wait_until(new_run, 180, "an asset-triggered run of orchbench_ml")
    finished = client.wait_for_run(ML_DAG, run["dag_run_id"], timeout_s=420)
    assert finished["state"] == "success"
    upstream = client.request(
        "GET", f"/dags/{ML_DAG}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents"
    )
    assert event["id"] in {e["id"] for e in upstream["asset_events"]}


def test_the_schedule_fires_for_its_latest_interval(airflow: AirflowTestInstance) -> None:
    """Catchup off and no start date: the scheduler made the run of the schedule's latest
    complete interval (configs/default.yaml: 0 3 * * *) as soon as it saw the DAG. It ran
    after that interval closed, and its tasks used that interval as the partition."""
    client = airflow.client

    def scheduled() -> dict | None:
        runs = client.dag_runs(ML_DAG, run_type=["scheduled"])
        return runs[0] if runs else None

    run = client.wait_until(scheduled, 180, "a scheduled run of orchbench_ml")
    record = AirflowAdapter(settings=airflow.services.settings).run_record(
        run["dag_run_id"], DEFAULT_CONFIG
    )
    done = client.dag_run(ML_DAG, run["dag_run_id"])
    assert done["state"] == "success" and record.status == "success", record.tool_details
    start, end = parse_time(done["data_interval_start"]), parse_time(done["data_interval_end"])
    assert parse_time(done["logical_date"]) == start and start.hour == 3
    assert end - start == timedelta(days=1)
    created = parse_time(done["queued_at"])
    assert end <= created < end + timedelta(days=1)  # the latest interval, once it was over
    assert parse_time(done["start_date"]) >= end
    assert record.logical_date == start.date()
    assert record.data_interval == (start, end)
    (ingest,) = record.attempts("ingest")
    assert ingest.metadata["logical_date"] == start.date().isoformat()


# Two dates: a promotion decision with a champion before it; the second backfill re-runs
# the last one (each date is 12 task processes, about 40 s under make test's load).
BACKFILL_DATES = [date(2026, 1, 1), date(2026, 1, 2)]


def _decisions(index: dict) -> list[tuple]:
    """The promotion decision of each registered version, in registration order."""
    return [
        (v["logical_date"], v["candidate"], v["promoted"], v["reason"], v["champion_before"])
        for v in index["versions"]
    ]


def _files(root: str) -> set[str]:
    return {str(p) for p in Path(root).rglob("*") if p.is_file()}


# Three backfilled dates' runs and the plain runner: with make test's two lanes on 2 cores
# a longer backfill took over the default 600 s safety limit.
@pytest.mark.timeout(1500)
def test_backfill_by_partition_matches_the_plain_runner_and_reruns_change_nothing(
    airflow: AirflowTestInstance, tmp_path: Path
) -> None:
    """``AirflowAdapter.backfill`` over two days of configs/daily.yaml (an Airflow
    backfill): one run per date, each on its own partition, equal to the plain runner on
    that date (selection, metrics, prediction hash), the same promotion decision per date;
    backfilling a date again re-runs every step but adds no version, no artifact."""
    adapter = AirflowAdapter(settings=airflow.services.settings)
    records = adapter.backfill(DAILY_CONFIG, BACKFILL_DATES)
    assert [r.logical_date for r in records] == BACKFILL_DATES
    assert all(r.status == "success" for r in records), [r.tool_details for r in records]
    assert {r.tool_details["run_type"] for r in records} == {"backfill"}

    # The plain runner over the same dates, in date order, with a store of its own.
    config = airflow.config(DAILY_CONFIG)
    own = {k: str(tmp_path / k) for k in ("artifact_root", "registry_root", "runs_root")}
    plain_config = config.model_copy(update={"storage": StorageConfig(**own)})
    plain = [run_pipeline(plain_config, logical_date=d) for d in BACKFILL_DATES]
    for record, expected in zip(records, plain, strict=True):
        assert record.selected_candidate == expected.selected_candidate, record.logical_date
        assert record.metrics == expected.metrics, record.logical_date
        assert record.prediction_hash == expected.prediction_hash, record.logical_date
        (ingest,) = record.attempts("ingest")
        assert ingest.metadata["logical_date"] == record.logical_date.isoformat()
    assert len({json.dumps(r.metrics, sort_keys=True) for r in records}) == len(BACKFILL_DATES)

    registry = airflow.registry_index(DAILY_CONFIG)
    plain_registry = json.loads(
        (Path(own["registry_root"]) / config.name / "index.json").read_text(encoding="utf-8")
    )
    decisions = _decisions(registry)
    assert [d[0] for d in decisions] == [d.isoformat() for d in BACKFILL_DATES]
    assert decisions == _decisions(plain_registry)
    assert registry["champion"] == plain_registry["champion"]
    champion = None
    for version in registry["versions"]:  # the champion moves only on a promotion
        assert version["champion_before"] == champion
        champion = version["version"] if version["promoted"] else champion

    # The last date backfilled again, as a user types it: `orchbench backfill --json`, pointed at
    # this session's services by the variables `orchbench airflow up` reads.
    artifacts = _files(config.storage.artifact_root)
    settings = airflow.services.settings
    cli = subprocess.run(
        [
            str(tool_bin("airflow", "orchbench")),
            "backfill",
            "--tool",
            "airflow",
            "--config",
            str(DAILY_CONFIG),
            "--start",
            BACKFILL_DATES[-1].isoformat(),
            "--end",
            BACKFILL_DATES[-1].isoformat(),
            "--json",
        ],
        env={
            **os.environ,
            "ORCHBENCH_AIRFLOW_HOME": str(settings.home),
            "ORCHBENCH_AIRFLOW_PORT": str(settings.port),
            "ORCHBENCH_AIRFLOW_PROFILE": settings.profile,
            "ORCHBENCH_AIRFLOW_SCHEDULES": "1" if settings.schedules else "0",
            "ORCHBENCH_DEBUG": "1",
        },
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert cli.returncode == 0, (
        cli.stderr[-6000:] + f"\nbackfills: {airflow.client.backfills(ML_DAG)}"
    )
    again = [RunRecord.model_validate(r) for r in json.loads(cli.stdout)]
    assert [r.run_id for r in again] == [records[-1].run_id]
    assert all(r.status == "success" for r in again)
    for record in again:  # really run again: every step twice under the same run id
        for key in PIPELINE.expand(config.candidate_names):
            step, branch = parse_task_key(key)
            assert len(record.attempts(step, branch)) == 2, (record.logical_date, key)
        assert record.registry["already_registered"] is True
    assert airflow.registry_index(DAILY_CONFIG)["versions"] == registry["versions"]
    assert _files(config.storage.artifact_root) == artifacts
