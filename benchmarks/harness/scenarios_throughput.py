"""Throughput: many runs started at once, per tool (issue 14, point 6).

N runs of the no-op chain workload (T tasks each), then M ML pipeline runs, each batch
started together through the adapter (``run_workloads_at_once``,
``run_pipelines_at_once``). The wall time of a batch runs from the first trigger to the
last run's end as the tool recorded it, so the harness's polling after that end stays
out of the figure.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from benchmarks.harness.session import ScenarioFailed, Session, is_success
from benchmarks.tools.base import WorkloadResult
from shared_ml.records import RunRecord


def scenario_throughput(s: Session) -> None:
    failures = _workload_batch(s) + _ml_batch(s)
    if failures:
        raise ScenarioFailed("; ".join(failures))


def _workload_batch(s: Session) -> list[str]:
    count, size = s.plan.throughput_runs, s.plan.throughput_tasks
    started = datetime.now(UTC)
    results = s.adapter.run_workloads_at_once("chain", size, count)
    done = [r for r in results if isinstance(r, WorkloadResult) and is_success(r.status)]
    failures = [_why(r) for r in results if r not in done]
    if done:
        wall = (max(r.finished_at for r in done) - started).total_seconds()
        s.record("throughput.runs_per_min", len(done) / wall * 60, runs=count, tasks=size)
        s.record("throughput.tasks_per_s", len(done) * size / wall, runs=count, tasks=size)
        for r in done:
            if r.end_to_end_s is not None:  # None: the tool gave no accepted moment
                s.record("throughput.run_latency_s", r.end_to_end_s, runs=count, tasks=size)
    return [f"workload run: {f}" for f in failures]


def _ml_batch(s: Session) -> list[str]:
    count = s.plan.throughput_ml_runs
    if count < 1:
        return []
    runs = [(s.config_for(f"throughput-{i}"), day) for i, day in enumerate(ml_dates(s))]
    started = datetime.now(UTC)
    records = s.adapter.run_pipelines_at_once(runs)
    done = [r for r in records if isinstance(r, RunRecord) and r.status == "success" and r.ended_at]
    failures = [_why(r) for r in records if r not in done]
    if done:
        ends = [r.ended_at for r in done if r.ended_at]
        wall = (max(ends) - started).total_seconds()
        s.record("throughput.ml_runs_per_min", len(done) / wall * 60, runs=count)
        for end in ends:
            s.record("throughput.ml_run_latency_s", (end - started).total_seconds(), runs=count)
    return [f"ML run: {f}" for f in failures]


def ml_dates(s: Session) -> list[date]:
    """Dates before the plan's backfill origin (the backfill counts forward from it),
    distinct per profile and repetition: a tool may keep one run per date."""
    block = (s.plan.profile_number(s.profile) * 100 + s.repetition + 1) * s.plan.throughput_ml_runs
    last = s.plan.backfill_origin - timedelta(days=block)
    return [last + timedelta(days=i) for i in range(s.plan.throughput_ml_runs)]


def _why(result: object) -> str:
    if isinstance(result, BaseException):
        return f"{type(result).__name__}: {str(result).strip()[:200]}"
    status = getattr(result, "status", "?")
    return f"{getattr(result, 'run_id', '?')} ended {status}"
