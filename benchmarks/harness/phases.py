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


def match_tasks(
    timings: Sequence[TaskTiming], graph_nodes: Sequence[str]
) -> tuple[dict[str, list[TaskTiming]], list[str]]:
    """Group timings by graph node. Tools name tasks their own way (``train``,
    ``train-op``, ``orchbench_ml.train``); a timing matches the node whose name equals it,
    or that it ends or starts with, after normalising case and dashes."""
    by_node: dict[str, list[TaskTiming]] = {n: [] for n in graph_nodes}
    normal_nodes = {_normal(n): n for n in graph_nodes}
    unmatched = []
    for timing in timings:
        name = _normal(timing.task)
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


def task_phases(timings: Sequence[TaskTiming], upstream: Mapping[str, Sequence[str]]) -> Phases:
    """Assignment and execution over every attempt that has the timestamps; transition per
    task with upstreams: its first attempt's start minus the latest end among the last
    attempts of its upstream tasks."""
    by_node, unmatched = match_tasks(timings, list(upstream))
    phases = Phases(unmatched_tasks=unmatched)
    for attempts in by_node.values():
        for t in attempts:
            if t.queued_at and t.started_at:
                phases.assignment.append((t.started_at - t.queued_at).total_seconds())
            if t.started_at and t.ended_at:
                phases.execution.append((t.ended_at - t.started_at).total_seconds())
    for node, parents in upstream.items():
        starts = [t.started_at for t in by_node[node] if t.started_at]
        if not parents or not starts:
            continue
        parent_ends = []
        for parent in parents:
            tries = sorted(by_node[parent], key=lambda t: t.try_number)
            if not tries or tries[-1].ended_at is None:
                break
            parent_ends.append(tries[-1].ended_at)
        else:
            phases.transition.append((min(starts) - max(parent_ends)).total_seconds())
    return phases
