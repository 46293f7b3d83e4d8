"""How runs start: the CLI with params, an asset event, and a backfill over past dates."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import UTC, date, datetime

import pytest

from benchmarks.environments import tool_bin
from benchmarks.tools.airflow.adapter import records_run_id as adapter_records_run_id
from benchmarks.tools.airflow.client import parse_time
from benchmarks.tools.airflow.services import airflow_env
from pipelines.airflow.common import INPUT_ASSET_NAME
from pipelines.airflow.common import records_run_id as dag_records_run_id
from shared_ml.records import collect_run_record, run_dir
from shared_ml.runner import run_pipeline
from shared_ml.spec import PIPELINE
from tests.airflow.conftest import DEFAULT_CONFIG, ML_DAG, AirflowTestInstance

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


def _rerun_diagnosis(airflow: AirflowTestInstance, run: dict, records: list) -> str:
    """What Airflow and the record folder say about a run, for a failure message."""
    tries = airflow.client.run_tries(ML_DAG, run["dag_run_id"])
    folder = run_dir(airflow.config().storage.runs_root, dag_records_run_id(run["dag_run_id"]))
    files = sorted(p.name for p in (folder / "steps").glob("*.json"))
    return (
        f"run {run}\nrecords {[(s.step, s.attempt, s.started_at) for s in records]}\n"
        f"tries {[t.as_dict() for t in tries]}\nfiles {files}"
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


def test_backfill_runs_each_date_once_and_rerunning_changes_nothing(
    airflow: AirflowTestInstance,
) -> None:
    client = airflow.client
    first, last = date(2025, 1, 1), date(2025, 1, 3)
    expected = {datetime(2025, 1, d, 3, tzinfo=UTC) for d in (1, 2, 3)}  # cron 0 3 * * *
    conf = {"config_path": str(DEFAULT_CONFIG)}

    def backfill_runs() -> dict[datetime, dict]:
        runs = client.dag_runs(ML_DAG, run_type=["backfill"])
        by_date: dict[datetime, dict] = {}
        for r in runs:
            logical = parse_time(r["logical_date"])
            assert logical not in by_date, f"two backfill runs for {logical}"
            by_date[logical] = r
        return by_date

    client.run_backfill(ML_DAG, first, last, conf=conf, max_active_runs=3, timeout_s=540)
    runs = backfill_runs()
    assert set(runs) == expected
    assert all(r["state"] == "success" for r in runs.values()), runs
    registry = airflow.registry_index()
    assert registry["versions"], "the backfill registered no model"
    for r in runs.values():
        record = _record(airflow, r["dag_run_id"])
        assert [s.attempt for s in record.attempts("register")] == [1]

    # Re-run the same range, re-processing the completed runs: still one run per date, the
    # same run ids, and the registry gains nothing (registration is idempotent).
    again = client.run_backfill(
        ML_DAG,
        first,
        last,
        conf=conf,
        max_active_runs=3,
        reprocess_behavior="completed",
        timeout_s=540,
    )
    rerun = backfill_runs()
    assert {d: r["dag_run_id"] for d, r in rerun.items()} == {
        d: r["dag_run_id"] for d, r in runs.items()
    }
    assert all(r["state"] == "success" for r in rerun.values()), rerun
    # Every date was queued again by this re-run and really re-ran all of its steps.
    created = parse_time(again[0]["created_at"])
    assert {d for d, r in rerun.items() if parse_time(r["queued_at"]) >= created} == expected
    for r in rerun.values():
        record = _record(airflow, r["dag_run_id"])
        for step in PIPELINE.step_names:
            executions = record.attempts(step)
            assert len(executions) == 2, _rerun_diagnosis(airflow, r, executions)
    assert airflow.registry_index()["versions"] == registry["versions"]
