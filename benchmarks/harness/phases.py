"""Per-task phases from the moments of the one timestamp scheme (benchmarks/tools/moments.py),
the same for every tool:

- wait: ready -> dispatched (ready: the latest ``persisted`` among the task's upstream
  tasks, or the run's accepted moment for a root task); first attempts only, since a
  retry's wait is the tool's retry delay;
- start-up: dispatched -> work start (process start, imports, DAG parse, the tool's own
  task preamble);
- work: work start -> work end (shared_ml's step itself);
- hand-off: work end -> persisted (the tool recording the outcome).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from benchmarks.tools.base import TaskTiming

PHASES: dict[str, tuple[str, str]] = {
    "wait": ("ready", "dispatched"),
    "startup": ("dispatched", "work_start"),
    "work": ("work_start", "work_end"),
    "handoff": ("work_end", "persisted"),
}


@dataclass
class Phases:
    wait: list[float] = field(default_factory=list)
    startup: list[float] = field(default_factory=list)
    work: list[float] = field(default_factory=list)
    handoff: list[float] = field(default_factory=list)
    unmatched_tasks: list[str] = field(default_factory=list)

    @staticmethod
    def median(values: list[float]) -> float | None:
        return statistics.median(values) if values else None


def _normal(name: str) -> str:
    return name.lower().replace("-", "_")


def _without_branch(name: str) -> str:
    """``train[forest]`` -> ``train``: a branch's timing counts for its step's node."""
    return name.split("[", 1)[0] if name.endswith("]") else name


def match_tasks(
    timings: Sequence[TaskTiming], graph_nodes: Sequence[str]
) -> tuple[dict[str, list[TaskTiming]], list[str]]:
    """Group timings by graph node. Tools name tasks their own way (``train``,
    ``train-op``, ``orchbench_ml.train``); a timing matches the node whose name equals it,
    or that it ends or starts with, after normalising case and dashes; a branch's task key
    (``train[forest]``) matches its step."""
    by_node: dict[str, list[TaskTiming]] = {n: [] for n in graph_nodes}
    normal_nodes = {_normal(n): n for n in graph_nodes}
    unmatched = []
    for timing in timings:
        name = _normal(_without_branch(timing.task))
        node = normal_nodes.get(name)
        if node is None:
            candidates = [
                n
                for key, n in normal_nodes.items()
                if name.endswith(("." + key, "_" + key, "/" + key)) or name.startswith(key + "_")
            ]
            node = max(candidates, key=len) if candidates else None
        if node is None:
            unmatched.append(timing.task)
        else:
            by_node[node].append(timing)
    return by_node, unmatched


def _branch(name: str) -> str | None:
    return name[:-1].split("[", 1)[1] if name.endswith("]") and "[" in name else None


def _by_branch(timings: Sequence[TaskTiming]) -> dict[str | None, list[TaskTiming]]:
    groups: dict[str | None, list[TaskTiming]] = {}
    for t in timings:
        groups.setdefault(_branch(t.task), []).append(t)
    return groups


def _persisted(timings: Sequence[TaskTiming], branch: str | None) -> datetime | None:
    """When an upstream was persisted for a task of ``branch``: the last try's persisted
    moment of the same branch, or (a fan-in, or an upstream without branches) the latest
    such moment of every branch. None if one is missing."""
    groups = _by_branch(timings)
    if branch is not None and branch in groups:
        groups = {branch: groups[branch]}
    moments = []
    for tries in groups.values():
        last = max(tries, key=lambda t: t.try_number)
        if last.persisted_at is None:
            return None
        moments.append(last.persisted_at)
    return max(moments) if moments else None


def ready_moments(
    by_node: Mapping[str, Sequence[TaskTiming]],
    upstream: Mapping[str, Sequence[str]],
    accepted_at: datetime | None,
) -> dict[str, datetime | None]:
    """Task name (``evaluate[forest]``) -> its ready moment: the run's accepted moment for a
    root task, else the latest persisted moment among its upstream tasks (per branch:
    ``evaluate[forest]`` waits for ``train[forest]``, a fan-in for every branch)."""
    ready: dict[str, datetime | None] = {}
    for node, parents in upstream.items():
        for tries in _by_branch(by_node.get(node, [])).values():
            task = tries[0].task
            if not parents:
                ready[task] = accepted_at
                continue
            ends = [_persisted(by_node.get(p, []), _branch(task)) for p in parents]
            ready[task] = None if any(e is None for e in ends) else max(ends)  # type: ignore[type-var]
    return ready


def _span(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def task_phases(
    timings: Sequence[TaskTiming],
    upstream: Mapping[str, Sequence[str]],
    accepted_at: datetime | None = None,
) -> Phases:
    """The four phases over the run's task attempts (wait: first attempts only); a phase
    whose moments a timing lacks is left out for that timing."""
    by_node, unmatched = match_tasks(timings, list(upstream))
    phases = Phases(unmatched_tasks=unmatched)
    ready = ready_moments(by_node, upstream, accepted_at)
    for attempts in by_node.values():
        for t in attempts:
            spans = {
                "startup": _span(t.dispatched_at, t.work_started_at),
                "work": _span(t.work_started_at, t.work_ended_at),
                "handoff": _span(t.work_ended_at, t.persisted_at),
            }
            if t.try_number <= 1:
                spans["wait"] = _span(ready.get(t.task), t.dispatched_at)
            for name, value in spans.items():
                if value is not None:
                    getattr(phases, name).append(value)
    return phases
