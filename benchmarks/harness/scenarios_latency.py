"""The pipeline's latency and per-task phases, the first run, and the scaling workloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from benchmarks.harness.phases import PHASES, task_phases
from benchmarks.harness.session import (
    PIPELINE_UPSTREAM,
    ScenarioFailed,
    Session,
    is_success,
)
from benchmarks.tools.base import TaskTiming
from benchmarks.tools.moments import step_moments
from shared_ml.workloads import workload_graph

# Which moments each phase needs, to say which one a tool lacks (phases.PHASES).
_MOMENT_FIELDS = {
    "ready": None,  # derived from the upstream tasks' persisted moments
    "dispatched": "dispatched_at",
    "work_start": "work_started_at",
    "work_end": "work_ended_at",
    "persisted": "persisted_at",
}


def _why_unavailable(
    s: Session, phase: str, timings: list[TaskTiming], unmatched: list[str]
) -> str:
    if not timings:
        return "no task timings from the adapter"
    if unmatched and len(unmatched) == len(timings):
        return f"task names {unmatched[:3]} do not match the graph"
    gaps = getattr(s.adapter, "moment_gaps", {})
    for moment in PHASES[phase]:
        if moment == "ready":
            moment = "persisted"  # ready is the upstream tasks' persisted moment
        field = _MOMENT_FIELDS[moment]
        if field and all(getattr(t, field) is None for t in timings):
            why = gaps.get(moment, "the tool's API/metadata and the step records lack it")
            return f"no task has a {moment} moment: {why}"
    return "no task has both moments of the phase (a root-only graph, or the run's accepted "
    "moment is missing)"


def record_phases(
    s: Session,
    prefix: str,
    timings: list[TaskTiming],
    upstream: dict,
    accepted_at: datetime | None,
    **params: Any,
) -> None:
    """The phase figures of one run (``latency.wait_s`` ...) from the tasks' moments;
    the scaling figures leave out the work phase (a no-op's is nil)."""
    phases = task_phases(timings, upstream, accepted_at)
    names = [n for n in PHASES if prefix == "latency" or n != "work"]
    for name in names:
        key = f"{prefix}.{name}_s"
        values = getattr(phases, name)
        if values:
            s.record(key, phases.median(values), **params)
        elif s.repetition == 0:
            why = _why_unavailable(s, name, timings, phases.unmatched_tasks)
            s.unavailable(key, why + (f" ({params})" if params else ""))


def warm_up(s: Session) -> None:
    """The first pipeline run after the services start: timed, reported on its own, and
    kept out of every other figure (it pays one-off discovery and warm-up)."""
    record, seconds, _, _ = s.timed_run("first-run")
    if record.status != "success":
        raise ScenarioFailed(f"the first pipeline run {record.run_id} ended {record.status}")
    s.record("latency.first_run_s", seconds)


def scenario_latency(s: Session) -> None:
    record, seconds, _, _ = s.timed_run("latency")
    if record.status != "success":
        raise ScenarioFailed(f"the clean pipeline run {record.run_id} ended {record.status}")
    s.clean_end_to_end_s = seconds
    s.record("latency.end_to_end_s", seconds)
    s.record("latency.step_execution_s", record.step_seconds)
    s.record("latency.overhead_s", seconds - record.step_seconds)
    for step in record.steps:
        if step.outcome == "success" and step.peak_rss_mb:
            s.record("latency.step_peak_rss_mb", step.peak_rss_mb, step=step.key)
    timings = step_moments(s.adapter.task_timings(record.run_id), record.steps)
    record_phases(s, "latency", timings, PIPELINE_UPSTREAM, record.accepted_at)
    s.collected.tools[s.tool].setdefault("pipeline_results", []).append(
        {
            "profile": s.profile,
            "repetition": s.repetition,
            "run_id": record.run_id,
            "selected_candidate": record.selected_candidate,
            "metrics": record.metrics,
            "prediction_hash": record.prediction_hash,
        }
    )


def scenario_scaling(s: Session) -> None:
    failures = []
    for shape, sizes in (("chain", s.plan.chain_sizes), ("fanout", s.plan.fanout_sizes)):
        if not sizes:
            if s.repetition == 0:
                s.outcome(
                    "skipped", f"no {shape} sizes in this plan (quick mode)", "scaling.end_to_end_s"
                )
            continue
        for size in sizes:
            result = s.adapter.run_workload(shape, size)  # type: ignore[arg-type]
            if not is_success(result.status):
                failures.append(f"{shape} {size}: {result.status}")
                continue
            if result.end_to_end_s is None:
                s.unavailable(
                    "scaling.end_to_end_s",
                    f"the adapter gave no accepted moment for the run ({shape} {size})",
                )
            else:
                s.record("scaling.end_to_end_s", result.end_to_end_s, shape=shape, size=size)
            graph = workload_graph(shape, size)
            record_phases(
                s, "scaling", result.tasks, graph, result.accepted_at, shape=shape, size=size
            )
    if failures:
        raise ScenarioFailed("workload runs did not succeed: " + "; ".join(failures))
