"""The check every orchestrator suite makes on a run it already has: the moments of the
one timestamp scheme (benchmarks/tools/moments.py) are present and in order."""

from __future__ import annotations

from benchmarks.tools.base import TaskTiming
from benchmarks.tools.moments import ordered, step_moments
from shared_ml.records import RunRecord


def assert_moments_in_order(timings: list[TaskTiming], record: RunRecord) -> None:
    """Every attempt that ran has dispatched, work start, work end and persisted, with
    dispatched <= work start <= work end <= persisted, inside the run's accepted ->
    terminal span (all the tool's own timestamps but the work, from the step records)."""
    merged = step_moments(timings, record.steps)
    ran = {(s.key, s.attempt) for s in record.steps if s.outcome in ("success", "failed")}
    checked = [t for t in merged if (t.task, t.try_number) in ran]
    assert checked and len(checked) == len(ran), (sorted(ran), [t.task for t in merged])
    assert record.accepted_at is not None and record.ended_at is not None
    for t in checked:
        moments = (t.dispatched_at, t.work_started_at, t.work_ended_at, t.persisted_at)
        assert None not in moments, t
        assert ordered(t) == [], (t.task, t.try_number, ordered(t))
        assert record.accepted_at <= t.dispatched_at, t  # type: ignore[operator]
        assert t.persisted_at <= record.ended_at, t  # type: ignore[operator]
