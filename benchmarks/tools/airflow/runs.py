"""How the adapter names and dates the ML DAG's runs: record folders, partitions, ranges.

Kept apart from the adapter (which never imports ``pipelines/``) with the same rules as
the DAG's tasks apply; ``tests/airflow/test_dag_integrity.py`` keeps the two in step.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from benchmarks.tools.airflow.client import parse_time
from shared_ml.config import Partition


def records_run_id(dag_run_id: str) -> str:
    """The folder name the DAG's tasks use for an Airflow run id (same rule as
    ``pipelines.airflow.tasks.records_run_id``; a test keeps the two in step)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", dag_run_id)


def run_partition(run: dict[str, Any]) -> Partition:
    """The partition of a DAG run, from the REST API's view of it: the same rule as the
    DAG's tasks apply (``pipelines.airflow.tasks.run_partition``; a test keeps the two in
    step). A run without a logical date stands for the day of its ``run_after``."""
    logical = parse_time(run.get("logical_date"))
    start = parse_time(run.get("data_interval_start"))
    end = parse_time(run.get("data_interval_end"))
    if logical is None:
        after = parse_time(run.get("run_after")) or datetime.now(UTC)
        return Partition.daily(after.astimezone(UTC).date())
    if start is None or end is None:
        return Partition.daily(logical.astimezone(UTC).date())
    return Partition(
        logical_date=logical.astimezone(UTC).date(), interval_start=start, interval_end=end
    )


def contiguous_ranges(dates: list[date]) -> list[tuple[date, date]]:
    """Sorted, deduplicated dates as ranges of consecutive days."""
    ranges: list[tuple[date, date]] = []
    for day in sorted(set(dates)):
        if ranges and day == ranges[-1][1] + timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges
