"""What the Airflow adapter and its parts share: the DAG ids, limits, and how Airflow's
own timestamps map onto the benchmark's moments (docs/benchmarks.md)."""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any

from benchmarks.tools.airflow.client import TaskTry, parse_time
from benchmarks.tools.base import TaskTiming

ML_DAG_ID = "orchbench_ml"
WORKLOAD_SIZES = (1, 10, 50)
RUN_TIMEOUT_S = float(os.environ.get("ORCHBENCH_AIRFLOW_RUN_TIMEOUT", "1800"))
SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def workload_dag_id(shape: str, size: int) -> str:
    return f"orchbench_{shape}_{size}"


def task_timing(t: TaskTry) -> TaskTiming:
    """A task try with the moments Airflow records (docs/benchmarks.md): dispatched =
    ``queued_when`` (the scheduler queued it to the executor), persisted = ``end_date``
    (the task's terminal state reached the metadata DB)."""
    return TaskTiming(
        task=t.key,
        try_number=t.try_number,
        state=t.state or "none",
        queued_at=t.queued_at,
        started_at=t.started_at,
        ended_at=t.ended_at,
        dispatched_at=t.queued_at,
        persisted_at=t.ended_at,
    )


def accepted_at(run: dict[str, Any]) -> datetime | None:
    """When Airflow accepted the run: its ``queued_at`` (the trigger created it queued),
    else ``run_after``, as the API returns them."""
    return parse_time(run.get("queued_at")) or parse_time(run.get("run_after"))
