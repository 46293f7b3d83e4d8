"""Per-task phases from the tool's own task timings: assignment, execution, transition."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from benchmarks.tools.base import TaskTiming


@dataclass
class Phases:
    assignment: list[float] = field(default_factory=list)
    execution: list[float] = field(default_factory=list)
    transition: list[float] = field(default_factory=list)
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


def _last_end(timings: Sequence[TaskTiming], branch: str | None):
    """When an upstream was done for a task of ``branch``: the end of the last try of the
    same branch, or (a fan-in, or an upstream without branches) the latest such end of
    every branch. None if one has not ended."""
    groups = _by_branch(timings)
    if branch is not None and branch in groups:
        groups = {branch: groups[branch]}
    ends = []
    for tries in groups.values():
        last = max(tries, key=lambda t: t.try_number)
        if last.ended_at is None:
            return None
        ends.append(last.ended_at)
    return max(ends) if ends else None


def task_phases(timings: Sequence[TaskTiming], upstream: Mapping[str, Sequence[str]]) -> Phases:
    """Assignment and execution over every attempt that has the timestamps; transition per
    task with upstreams: its first attempt's start minus the latest end among the last
    attempts of its upstream tasks. Branch tasks (``train[forest]``) count per branch:
    ``evaluate[forest]`` waits for ``train[forest]``; a fan-in waits for every branch."""
    by_node, unmatched = match_tasks(timings, list(upstream))
    phases = Phases(unmatched_tasks=unmatched)
    for attempts in by_node.values():
        for t in attempts:
            if t.queued_at and t.started_at:
                phases.assignment.append((t.started_at - t.queued_at).total_seconds())
            if t.started_at and t.ended_at:
                phases.execution.append((t.ended_at - t.started_at).total_seconds())
    for node, parents in upstream.items():
        for branch, tries_of_task in _by_branch(by_node[node]).items():
            starts = [t.started_at for t in tries_of_task if t.started_at]
            if not parents or not starts:
                continue
            ends = [_last_end(by_node[parent], branch) for parent in parents]
            if all(end is not None for end in ends):
                phases.transition.append((min(starts) - max(ends)).total_seconds())  # type: ignore[type-var]
    return phases
