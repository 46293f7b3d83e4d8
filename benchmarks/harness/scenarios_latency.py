"""The pipeline's latency and per-task phases, the first run, and the scaling workloads."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.harness.phases import task_phases
from benchmarks.harness.session import (
    PIPELINE_UPSTREAM,
    ScenarioFailed,
    Session,
    is_success,
)
from shared_ml.workloads import workload_graph


def record_phases(s: Session, prefix: str, timings: list, upstream: dict, **params: Any) -> None:
    phases = task_phases(timings, upstream)
    names = ["assignment", "transition"] + (["execution"] if prefix == "latency" else [])
    for name in names:
        values = getattr(phases, name)
        key = f"{prefix}.{name}_s"
        if values:
            s.record(key, phases.median(values), **params)
        elif name == "transition" and not any(upstream.values()):
            continue  # a graph without edges (chain of 1) has no transitions
        elif s.repetition == 0:
            why = (
                "no task timings from the adapter" if not timings else "timings lack the timestamps"
            )
            if timings and phases.unmatched_tasks and len(phases.unmatched_tasks) == len(timings):
                why = f"task names {phases.unmatched_tasks[:3]} do not match the graph"
            if name == "assignment" and timings and all(t.queued_at is None for t in timings):
                why = "the tool reports no queued time (no queue between ready and running)"
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
    record_phases(s, "latency", s.adapter.task_timings(record.run_id), PIPELINE_UPSTREAM)
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
            started = time.perf_counter()
            result = s.adapter.run_workload(shape, size)  # type: ignore[arg-type]
            seconds = time.perf_counter() - started
            if not is_success(result.status):
                failures.append(f"{shape} {size}: {result.status}")
                continue
            s.record("scaling.end_to_end_s", seconds, shape=shape, size=size)
            record_phases(
                s, "scaling", result.tasks, workload_graph(shape, size), shape=shape, size=size
            )
    if failures:
        raise ScenarioFailed("workload runs did not succeed: " + "; ".join(failures))
