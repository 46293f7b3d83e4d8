"""One step attempt's log, read from Prefect's logs API (``orchbench logs --tool prefect``).

Prefect keeps the log lines of every task run: its own (logger ``prefect.task_runs``: the
exception, the retry it schedules, the final state) and shared_ml's (``shared_ml.*``: start,
end with duration and peak memory, the error with its traceback; each line prefixed
``[<run_id> <task key> attempt <n>]``), which reach it because every flow-run process names
``shared_ml`` in ``PREFECT_LOGGING_EXTRA_LOGGERS``.

From orchbench's names to Prefect's:

- the run: its flow runs are those named after the orchbench run id (the adapter names
  them so; a re-run under the same id is one more), plus the one its record names (a
  scheduled run is named by Prefect);
- the step ``train[forest]`` is the name of its task run in each of them (``tasks.py``);
- the attempt: Prefect's retries of a task stay in one task run (its ``run_count`` counts
  them) while a resumed run has a task run of its own, so the attempt's task run is the
  last one that had started when the attempt started (the step record's ``started_at``);
- the attempt's lines in it: those from its start to the start of the next attempt of the
  same step (the flow-run process stamps its log lines and step records with one clock),
  so Prefect's own lines on that attempt's failure and retry belong to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from benchmarks.tools.prefect.client import PrefectClient, parse_time
from shared_ml.records import RunRecord, StepRecord


class StepLogNotFound(LookupError):
    """The run, step or attempt has no task run (or no record) to read the log of."""


def log_server(explicit: str | None, record: RunRecord, local: str | None) -> str:
    """The API to read a run's logs from: the one given (``--url``), else the one its
    record names if it answers, else the running local services'. None is started for
    a read: say how to start one instead."""
    if explicit:
        return explicit
    tried = list(dict.fromkeys(u for u in (record.tool_details.get("api_url"), local) if u))
    for url in tried:
        with PrefectClient(url, timeout_s=5.0) as client:
            if client.healthy():
                return url
    where = f" (tried {', '.join(tried)})" if tried else ""
    raise StepLogNotFound(
        f"no Prefect server answers{where}: start it with `orchbench prefect up`, or pass "
        "--url http://<server>/api"
    )


def attempt_bounds(
    record: RunRecord, key: str, attempt: int
) -> tuple[StepRecord, datetime | None, datetime | None]:
    """The attempt's step record, the time its lines start (None: from the task run's
    first line) and the time the next attempt started (None: to the last line)."""
    attempts = sorted((s for s in record.steps if s.key == key), key=lambda s: s.started_at)
    numbers = [s.attempt for s in attempts]
    if attempt not in numbers:
        raise StepLogNotFound(
            f"run {record.run_id} has no attempt {attempt} of {key} (attempts: {numbers})"
        )
    index = numbers.index(attempt)
    this = attempts[index]
    begin = this.started_at if index > 0 else None
    end = attempts[index + 1].started_at if index + 1 < len(attempts) else None
    return this, begin, end


def flow_run_ids(client: PrefectClient, record: RunRecord) -> list[str]:
    """Every flow run of the orchbench run: named after it, or named in its record."""
    details = record.tool_details
    ids = [details.get("flow_run_id"), details.get("resumed_from_flow_run")]
    ids += [run["id"] for run in client.read_flow_runs(names=[record.run_id])]
    return list(dict.fromkeys(i for i in ids if i))


def task_run_of_attempt(task_runs: list[dict[str, Any]], started_at: datetime) -> dict[str, Any]:
    """The last task run that had started when the attempt started."""
    started = [t for t in task_runs if parse_time(t.get("start_time"))]
    started.sort(key=lambda t: parse_time(t["start_time"]))
    before = [t for t in started if parse_time(t["start_time"]) <= started_at]
    return (before or started)[-1]


def format_line(log: dict[str, Any]) -> str:
    """``<UTC time> <LEVEL> <logger> <message>``: one line, a traceback under it."""
    when = parse_time(log["timestamp"])
    stamp = when.isoformat(timespec="milliseconds") if when else log["timestamp"]
    level = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}.get(
        log["level"], str(log["level"])
    )
    return f"{stamp} {level:<7} {log['name']} {log['message']}"


def step_attempt_log(client: PrefectClient, record: RunRecord, key: str, attempt: int) -> str:
    """The lines Prefect stored for ``attempt`` of task ``key`` in the run ``record``,
    after one header line naming the task run they were read from."""
    step, begin, end = attempt_bounds(record, key, attempt)
    flow_runs = flow_run_ids(client, record)
    if not flow_runs:
        raise StepLogNotFound(f"Prefect at {client.api_url} has no flow run of run {record.run_id}")
    task_runs = client.read_task_runs_named(flow_runs, key)
    if not any(t.get("start_time") for t in task_runs):
        raise StepLogNotFound(
            f"Prefect at {client.api_url} has no started task run {key!r} in the flow runs "
            f"of run {record.run_id} ({', '.join(flow_runs)})"
        )
    task_run = task_run_of_attempt(task_runs, step.started_at)
    lines = []
    for log in client.read_logs(task_run_id=task_run["id"]):
        when = parse_time(log["timestamp"])
        if when is None or (begin and when < begin) or (end and when >= end):
            continue
        lines.append(format_line(log))
    header = (
        f"# Prefect task run {task_run['name']} {task_run['id']} of flow run "
        f"{task_run['flow_run_id']}: {len(lines)} line(s) from {client.api_url}/logs/filter"
    )
    return "\n".join([header, *lines]) + "\n"
