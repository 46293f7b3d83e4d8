"""A step attempt's log, read through Airflow's own task-log endpoint.

Airflow 3 keeps each try of each task instance as a structured log (one JSON event per
line, written by the task's supervisor); the REST API serves it at
``GET /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}``
(``map_index`` picks one instance of a mapped task, ``full_content`` the whole log).
``orchbench logs --tool airflow`` prints it as text lines here.

orchbench's step key maps to Airflow as: ``ingest`` -> task ``ingest``; a branch
``train[forest]`` -> task ``train`` at the map index whose label (``rendered_map_index``,
the candidate's name) is ``forest``. The attempt is Airflow's try number (the DAG's tasks
pass ``ti.try_number`` to shared_ml as the attempt).
"""

from __future__ import annotations

from typing import Any

from benchmarks.tools.airflow.client import AirflowClient
from shared_ml.spec import parse_task_key


class StepNotInRun(LookupError):
    """The run has no task instance for a step key."""


def task_instance_of(client: AirflowClient, dag_id: str, run_id: str, key: str) -> tuple[str, int]:
    """``(task_id, map_index)`` of the step key ``key`` (``train[forest]``) in a run."""
    step, branch = parse_task_key(key)
    instances = [ti for ti in client.task_instances(dag_id, run_id) if ti["task_id"] == step]
    if not instances:
        raise StepNotInRun(f"run {run_id} of {dag_id} has no task {step!r}")
    if branch is None:
        return step, instances[0].get("map_index", -1)
    for ti in instances:
        label = ti.get("rendered_map_index")
        if branch in (label, str(ti.get("map_index"))):
            return step, ti["map_index"]
    labels = sorted(str(ti.get("rendered_map_index") or ti.get("map_index")) for ti in instances)
    raise StepNotInRun(f"run {run_id} has no {step} instance for {branch!r}; it has {labels}")


def fetch_task_log(
    client: AirflowClient,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int,
    map_index: int = -1,
) -> list[dict[str, Any] | str]:
    """The log of one try of one task instance, as Airflow's log reader returns it:
    structured messages (``{"timestamp", "event", "level", "logger", ...}``), or plain
    lines where a file could not be parsed. Follows continuation tokens (a log still
    being written) until a page adds nothing."""
    endpoint = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
    params: dict[str, Any] = {"map_index": map_index, "full_content": True}
    messages: list[dict[str, Any] | str] = []
    for _ in range(100):  # bounded: a running task's log could go on for ever
        page = client.request(
            "GET", endpoint, params=params, headers={"Accept": "application/json"}
        )
        messages.extend(page["content"])
        token = page.get("continuation_token")
        if not token or not page["content"]:
            break
        params = {"map_index": map_index, "token": token}
    return messages


# Keys shown in a line's head rather than as key=value.
_HEAD_KEYS = {"timestamp", "event", "level", "logger", "error_detail", "filename", "lineno"}
# What Airflow binds to every line of a task's log: the task instance the header names.
_TASK_INSTANCE_KEYS = {"dag_id", "run_id", "task_id", "map_index", "try_number", "ti_id"}


def render_log(messages: list[dict[str, Any] | str]) -> str:
    """Text lines, as the UI shows them: ``<time> <LEVEL> <logger> <file:line>: <event>
    key=value``, with a failure's traceback (``error_detail``) below its line."""
    lines: list[str] = []
    for message in messages:
        if isinstance(message, str):
            lines.append(message)
            continue
        event = str(message.get("event", ""))
        if event.startswith("::endgroup::"):
            continue
        if event.startswith("::group::"):  # e.g. where Airflow read the log from, next
            lines.append(f"--- {event.removeprefix('::group::')}")
            continue
        where = (
            f"{message['filename']}:{message.get('lineno')}" if message.get("filename") else None
        )
        head = " ".join(
            str(part)
            for part in (
                message.get("timestamp"),
                str(message.get("level", "")).upper() or None,
                message.get("logger"),
                where,
            )
            if part
        )
        fields = " ".join(
            f"{k}={v}"
            for k, v in message.items()
            if k not in _HEAD_KEYS and k not in _TASK_INSTANCE_KEYS
        )
        lines.append(" ".join(filter(None, (f"{head}:" if head else "", event, fields))))
        lines.extend(_traceback(message.get("error_detail")))
    return "".join(f"{line}\n" for line in lines)


def _traceback(detail: Any) -> list[str]:
    """A structured exception (structlog's dict form) as traceback lines."""
    if not isinstance(detail, list):
        return [] if detail is None else [f"  {detail}"]
    lines: list[str] = []
    for exc in detail:
        if not isinstance(exc, dict):
            lines.append(f"  {exc}")
            continue
        lines.append("  Traceback (most recent call last):")
        for frame in exc.get("frames") or []:
            lines.append(
                f"    File {frame.get('filename')!r}, line {frame.get('lineno')}, "
                f"in {frame.get('name')}"
            )
        lines.append(f"  {exc.get('exc_type')}: {exc.get('exc_value')}")
    return lines
