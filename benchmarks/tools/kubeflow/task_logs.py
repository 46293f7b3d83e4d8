"""kfp.local's task logs, as ``pipelines.kubeflow.run`` indexes them per run.

Each task execution's streamed output is kept next to the task's outputs in the pipeline
root, and one JSON line per execution goes to the run's index (``task_logs`` in the run
record; format in ``pipelines/kubeflow/task_logs.py``): ``key`` is the orchbench step key
(``train[forest]``: the ParallelFor iteration whose ``candidate`` is forest), ``attempt``
the run's count of that key's executions, as in the step records.
"""

from __future__ import annotations

import json
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

from shared_ml.records import RunRecord


def _entries(index: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(index).read_text().splitlines() if line]


def task_attempt_log(record: RunRecord, step: str, attempt: int) -> str:
    """The log kfp.local ran ``step`` attempt ``attempt`` of ``record`` with, headed by
    the task's name, folder, status and times."""
    index = record.tool_details.get("task_logs")
    if not index or not Path(index).is_file():
        raise FileNotFoundError(
            f"run {record.run_id}: no KFP task log index (tool_details.task_logs = "
            f"{index!r}); only runs made by this version keep their task logs"
        )
    entries = _entries(index)
    found = [e for e in entries if e["key"] == step and e["attempt"] == attempt]
    if not found:
        kept = sorted({(e["key"], e["attempt"]) for e in entries})
        raise FileNotFoundError(
            f"run {record.run_id}: kfp.local ran no {step} attempt {attempt} "
            f"(cached tasks do not run); kept in {index}: "
            + ", ".join(f"{k} attempt {a}" for k, a in kept)
        )
    entry = found[-1]
    header = (
        f"# kfp.local task {entry['kfp_task']} at {entry['task_root']}: "
        f"{entry['kfp_status']} ({entry['started_at']} - {entry['ended_at']})\n"
    )
    # kfp.local indents what it prints for display (by a varying amount: it patches
    # `print` globally from concurrent threads); the common indent is not the log's.
    return header + textwrap.dedent(Path(entry["log"]).read_text(encoding="utf-8"))


def launch_moments(index: str | None) -> dict[tuple[str, int], tuple[datetime, datetime]]:
    """(task key, attempt) -> when the launcher started and ended its kfp.local task; empty
    without an index."""
    if not index or not Path(index).is_file():
        return {}
    return {
        (e["key"], e["attempt"]): (
            datetime.fromisoformat(e["started_at"]),
            datetime.fromisoformat(e["ended_at"]),
        )
        for e in _entries(index)
    }
