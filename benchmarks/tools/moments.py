"""One timestamp scheme for every tool's tasks: the moments, defined once.

Each task attempt passes the same moments, whatever tool runs it. An adapter maps its
tool's own API or metadata onto them (the table in docs/benchmarks.md); the step records
that shared_ml writes inside every step give the work moments and process up, the same
code in every tool. The phases (benchmarks/harness/phases.py) are differences of moments.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from itertools import pairwise

from benchmarks.tools.base import TaskTiming
from shared_ml.records import StepRecord

# name -> definition; the report and docs/benchmarks.md print these.
MOMENTS: dict[str, str] = {
    "accepted": "the run: the tool accepted the trigger (its own record of the run's creation)",
    "ready": "every upstream task of this one is persisted (a root task: the run's accepted "
    "moment); derived, never read from a tool",
    "dispatched": "the tool handed the task to whatever will run it (executor queue, "
    "task runner thread, subprocess start)",
    "process_up": "the process the task's code runs in had started (its start in /proc, "
    "to 10 ms; a tool that runs tasks as threads: the flow's process)",
    "work_start": "shared_ml began the step's own work (inside the task, after imports "
    "and the tool's start-up)",
    "work_end": "shared_ml finished the step's own work (outputs written)",
    "persisted": "the tool recorded the task's terminal state: from then on downstream "
    "tasks may run",
    "terminal": "the run: the tool recorded the run's terminal state",
}


def step_moments(timings: Sequence[TaskTiming], steps: Sequence[StepRecord]) -> list[TaskTiming]:
    """``timings`` with work start/end and process up filled from the step records of the
    same task key and attempt (``train[forest]`` attempt 2). A timing without a record
    (a cached task, a workload task) keeps what it had."""
    by_attempt = {(s.key, s.attempt): s for s in steps}
    for t in timings:
        step = by_attempt.get((t.task, t.try_number))
        if step is None:
            continue
        t.work_started_at = step.started_at
        t.work_ended_at = step.ended_at
        t.process_up_at = step.process_started_at or t.process_up_at
    return list(timings)


def ordered(t: TaskTiming) -> list[str]:
    """The moments of ``t`` that are out of order (dispatched <= work start <= work end <=
    persisted), as ``a > b`` strings; empty when they are in order or absent."""
    chain: list[tuple[str, datetime | None]] = [
        ("dispatched", t.dispatched_at),
        ("work_start", t.work_started_at),
        ("work_end", t.work_ended_at),
        ("persisted", t.persisted_at),
    ]
    present = [(name, at) for name, at in chain if at is not None]
    return [
        f"{a} {a_at.isoformat()} > {b} {b_at.isoformat()}"
        for (a, a_at), (b, b_at) in pairwise(present)
        if a_at > b_at
    ]
