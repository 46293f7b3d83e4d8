"""What orchbench reads from Prefect's task runs and flow runs (API JSON, no Prefect import):
summaries for the run record, timings, the task graph from ``task_inputs``, branch
intervals, and the partition a flow run stands for."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from benchmarks.tools.base import TaskTiming
from benchmarks.tools.prefect.client import parse_time
from shared_ml.config import Partition, parse_logical_date
from shared_ml.spec import parse_task_key


def state_name(task_run: dict[str, Any]) -> str | None:
    return (task_run.get("state") or {}).get("name")


def upstream_ids(task_run: dict[str, Any]) -> set[str]:
    """Ids of the task runs whose results this one received (its ``task_inputs``)."""
    return {
        item["id"]
        for inputs in (task_run.get("task_inputs") or {}).values()
        for item in inputs
        if item.get("input_type") == "task_run"
    }


def task_graph_of(task_runs: list[dict[str, Any]]) -> dict[str, frozenset[str]]:
    """Task run name (``train[forest]``) -> names of its upstream task runs, as Prefect
    recorded them: the shape of ``PIPELINE.expand(...)``."""
    names = {t["id"]: t["name"] for t in task_runs}
    if len(set(names.values())) != len(names):
        raise ValueError(f"task run names are not unique: {sorted(names.values())}")
    return {
        t["name"]: frozenset(names[i] for i in upstream_ids(t) if i in names) for t in task_runs
    }


def branch_intervals(task_runs: list[dict[str, Any]]) -> dict[str, tuple[datetime, datetime]]:
    """Per candidate branch: the start of its first task run to the end of its last, from
    Prefect's own ``start_time``/``end_time`` (e.g. ``train[c]`` start -> ``evaluate[c]`` end)."""
    spans: dict[str, list[datetime]] = {}
    for t in task_runs:
        _, branch = parse_task_key(t["name"])
        start, end = parse_time(t.get("start_time")), parse_time(t.get("end_time"))
        if branch is None or start is None or end is None:
            continue
        spans.setdefault(branch, []).extend((start, end))
    return {branch: (min(times), max(times)) for branch, times in spans.items()}


def summarize_task_run(task_run: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": task_run["name"],
        "id": task_run["id"],
        "state": state_name(task_run),
        "state_type": (task_run.get("state") or {}).get("type"),
        "run_count": task_run.get("run_count"),
        "expected_start_time": task_run.get("expected_start_time"),
        "start_time": task_run.get("start_time"),
        "end_time": task_run.get("end_time"),
        "total_run_time_s": task_run.get("total_run_time"),
        "upstream": sorted(upstream_ids(task_run)),
    }


def to_task_timing(task_run: dict[str, Any]) -> TaskTiming:
    """A task run with the moments Prefect records (docs/benchmarks.md). dispatched =
    ``start_time`` (the Running state: the task engine, in its runner thread, took the
    task once its upstream futures resolved). Not the Pending state: Prefect 3.9's engine
    records Pending at submission, before it waits for the upstream results, so it can
    precede ready. persisted = ``end_time`` (the terminal state's timestamp)."""
    start, end = parse_time(task_run.get("start_time")), parse_time(task_run.get("end_time"))
    return TaskTiming(
        task=task_run["name"],
        try_number=task_run.get("run_count") or 0,
        state=state_name(task_run) or "unknown",
        queued_at=parse_time(task_run.get("expected_start_time")),
        started_at=start,
        ended_at=end,
        dispatched_at=start,
        persisted_at=end,
    )


def flow_run_accepted_at(flow_run: dict[str, Any]) -> datetime | None:
    """When Prefect accepted the flow run: its ``created`` timestamp (the API created it,
    from a deployment or the flow's own process), else its expected start."""
    return parse_time(flow_run.get("created")) or parse_time(flow_run.get("expected_start_time"))


def flow_run_partition(flow_run: dict[str, Any], logical_date: date | None = None) -> Partition:
    """The partition a flow run stands for, by the flow's own rule: the ``logical_date``
    given (or passed as parameter), else the day (UTC) of its scheduled start time."""
    given = logical_date or (flow_run.get("parameters") or {}).get("logical_date")
    if given:
        return Partition.daily(parse_logical_date(given))
    scheduled = parse_time(flow_run.get("expected_start_time")) or datetime.now(UTC)
    return Partition.daily(scheduled.astimezone(UTC).date())


def flow_run_execution(flow_run: dict[str, Any]) -> dict[str, Any]:
    """Who ran the flow run, as Prefect recorded it: its deployment, work pool and queue,
    the worker that submitted it (the label a worker gives each flow run it submits) and
    the worker's handle on its process. All empty for an in-process flow."""
    labels = flow_run.get("labels") or {}
    return {
        "deployment_id": flow_run.get("deployment_id"),
        "work_pool_name": flow_run.get("work_pool_name"),
        "work_queue_name": flow_run.get("work_queue_name"),
        "worker_name": labels.get("prefect.worker.name"),
        "worker_type": labels.get("prefect.worker.type"),
        "infrastructure_pid": flow_run.get("infrastructure_pid"),
    }


def flow_run_details(
    flow_run: dict[str, Any], task_runs: list[dict[str, Any]], states: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the run record keeps of a finished flow run (``tool_details``): its state,
    times and state history, its task runs, and each branch's interval by Prefect's clock."""
    state = flow_run["state"]
    return {
        "flow_run_id": flow_run["id"],
        "flow_run_name": flow_run.get("name"),
        "flow_run_state": {
            "type": state["type"],
            "name": state["name"],
            "message": state.get("message"),
        },
        "flow_run_start": flow_run.get("start_time"),
        "flow_run_end": flow_run.get("end_time"),
        "expected_start_time": flow_run.get("expected_start_time"),
        "flow_run_states": states,
        "flow_run_execution": flow_run_execution(flow_run),
        "task_runs": [summarize_task_run(t) for t in task_runs],
        # Prefect's own clock: each candidate branch's first start and last end.
        "branch_intervals": {
            branch: [start.isoformat(), end.isoformat()]
            for branch, (start, end) in sorted(branch_intervals(task_runs).items())
        },
        "cached_steps": sorted(t["name"] for t in task_runs if state_name(t) == "Cached"),
    }
