"""A scheduler that dies on its own is started again, as the chart's Deployment would, and
the run that was waiting for it completes. Airflow 3.3.2's scheduler exits this way when a
backfill cut short by a SQLite lock error deletes runs it was scheduling; every run then
stood still until the test's time limit (seen in CI)."""

from __future__ import annotations

import os
import signal
import time
import uuid

from benchmarks.tools.airflow.adapter import AirflowAdapter
from tests.airflow.conftest import DEFAULT_CONFIG, AirflowTestInstance


def test_a_crashed_scheduler_is_started_again_and_the_waiting_run_completes(
    airflow: AirflowTestInstance,
) -> None:
    services = airflow.services
    # Killed while idle. A task the dead scheduler had queued would wait for the next
    # one's orphan check (5 min by default) and hold its DAG's max_active_runs meanwhile,
    # which the session's later tests would trip over.
    airflow.client.wait_until(
        lambda: not airflow.client.dag_runs("~", state=["queued", "running"]),
        300,
        "no queued or running DAG run in the session",
        1.0,
    )
    crashed = services.running_components()["scheduler"]
    os.killpg(crashed.pid, signal.SIGKILL)  # the scheduler and its executor's workers
    deadline = time.monotonic() + 30
    while crashed.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not crashed.alive()
    assert "scheduler" not in services.running_components()

    adapter = AirflowAdapter(settings=services.settings)
    record = adapter.run_pipeline(DEFAULT_CONFIG, run_id=f"after-crash-{uuid.uuid4().hex[:8]}")

    assert record.status == "success", record.tool_details
    (note,) = record.tool_details["components_restarted_after_crash"]
    assert f"scheduler (pid {crashed.pid}) exited (exit code -9)" in note
    revived = services.running_components()["scheduler"]
    assert revived.pid != crashed.pid
    # Nothing ran while no scheduler was there: the first task started after the restart.
    first_task = min(s.started_at for s in record.steps)
    assert first_task.timestamp() > revived.create_time
