"""The one timestamp scheme: phases from constructed moments, step records merged into
tool timings, the order check, and latency timed from the tool's own run timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from benchmarks.harness.phases import task_phases
from benchmarks.harness.session import ScenarioFailed, tool_seconds
from benchmarks.tools.base import TaskTiming, WorkloadResult
from benchmarks.tools.moments import ordered, step_moments
from shared_ml.records import RunRecord, StepRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float | None) -> datetime | None:
    return None if seconds is None else T0 + timedelta(seconds=seconds)


def task(
    name: str,
    dispatched: float | None,
    work: tuple[float, float] | None,
    persisted: float | None,
    try_number: int = 1,
) -> TaskTiming:
    """A timing with only the moments set (the tool's own fields left empty)."""
    start, end = work if work else (None, None)
    return TaskTiming(
        name,
        try_number,
        "success",
        None,
        None,
        None,
        dispatched_at=at(dispatched),
        work_started_at=at(start),
        work_ended_at=at(end),
        persisted_at=at(persisted),
    )


def test_phases_of_a_diamond_with_a_retry() -> None:
    upstream = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    timings = [
        task("a", 0.5, (1.0, 2.0), 2.5),
        task("b", 3.0, (3.5, 4.0), 4.1),  # failed first try
        task("b", 5.0, (5.25, 6.0), 6.5, try_number=2),
        task("orchbench_ml.c", 2.75, (3.0, 3.5), 4.0),
        task("d", 7.0, (7.5, 8.0), 8.5),
    ]
    phases = task_phases(timings, upstream, accepted_at=at(0))
    # a: accepted 0 -> 0.5; b: a persisted 2.5 -> 3.0 (first try only); c: 2.5 -> 2.75;
    # d: the later of b's last try (6.5) and c (4.0) -> 7.0.
    assert sorted(phases.wait) == pytest.approx([0.25, 0.5, 0.5, 0.5])
    assert sorted(phases.startup) == pytest.approx([0.25, 0.25, 0.5, 0.5, 0.5])
    assert sorted(phases.work) == pytest.approx([0.5, 0.5, 0.5, 0.75, 1.0])
    assert sorted(phases.handoff) == pytest.approx([0.1, 0.5, 0.5, 0.5, 0.5])
    assert phases.unmatched_tasks == []


def test_phases_of_a_branch_fan_out_and_fan_in() -> None:
    """``evaluate[x]`` is ready when ``train[x]`` is persisted, not ``train[y]``; the fan-in
    ``select`` is ready when the last branch is persisted."""
    upstream = {"prep": [], "train": ["prep"], "evaluate": ["train"], "select": ["evaluate"]}
    timings = [
        task("prep", 0.1, (0.2, 0.9), 1.0),
        task("train[x]", 1.1, (1.2, 1.9), 2.0),
        task("train[y]", 1.2, (1.3, 3.9), 4.0),
        task("evaluate[x]", 2.3, (2.4, 2.45), 2.5),
        task("evaluate[y]", 4.4, (4.5, 4.9), 5.0),
        task("select", 5.5, (5.6, 5.9), 6.0),
    ]
    phases = task_phases(timings, upstream, accepted_at=at(0))
    assert sorted(phases.wait) == pytest.approx([0.1, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert phases.unmatched_tasks == []


def test_a_missing_moment_leaves_out_only_the_phases_that_need_it() -> None:
    upstream = {"a": [], "b": ["a"]}
    timings = [task("a", None, (1.0, 2.0), 2.5), task("b", 3.0, (3.5, 4.0), None)]
    phases = task_phases(timings, upstream)  # no accepted moment: a root has no ready
    assert phases.wait == pytest.approx([0.5])  # b only
    assert phases.startup == pytest.approx([0.5])  # b only: a was never dispatched
    assert sorted(phases.work) == pytest.approx([0.5, 1.0])
    assert phases.handoff == pytest.approx([0.5])  # a only: b was never persisted


def test_step_records_fill_work_moments_and_process_up_by_key_and_attempt() -> None:
    timings = [task("train[x]", 1.0, None, 3.0), task("train[x]", 4.0, None, 6.0, 2)]
    steps = [
        StepRecord(
            step="train",
            branch="x",
            attempt=2,
            started_at=at(4.5),
            ended_at=at(5.5),
            process_started_at=at(4.2),
        )
    ]
    merged = step_moments(timings, steps)
    assert merged[0].work_started_at is None  # attempt 1 has no record
    assert (merged[1].process_up_at, merged[1].work_started_at) == (at(4.2), at(4.5))
    assert merged[1].work_ended_at == at(5.5)


def test_ordered_names_the_moments_out_of_order() -> None:
    assert ordered(task("a", 0.0, (1.0, 2.0), 3.0)) == []
    assert ordered(task("a", None, (1.0, 2.0), None)) == []
    problems = ordered(task("a", 1.5, (1.0, 2.0), 3.0))
    assert len(problems) == 1 and problems[0].startswith("dispatched ")


def test_latency_is_timed_from_the_tools_accepted_and_terminal_timestamps() -> None:
    record = RunRecord(
        run_id="r1",
        tool="demo",
        pipeline="p",
        status="success",
        config_fingerprint="f",
        seed=1,
        accepted_at=at(1.0),
        started_at=at(2.0),
        ended_at=at(4.5),
    )
    assert tool_seconds(record) == pytest.approx(3.5)
    record.accepted_at = None
    with pytest.raises(
        ScenarioFailed, match=r"r1 \(demo\): its record lacks the tool.s accepted_at"
    ):
        tool_seconds(record)


def test_workload_end_to_end_needs_the_tools_accepted_moment() -> None:
    result = WorkloadResult("chain", 1, "w1", "success", at(0.0), at(3.0))  # type: ignore[arg-type]
    assert result.end_to_end_s is None  # the harness's trigger time is not used
    result.accepted_at = at(0.5)
    assert result.end_to_end_s == pytest.approx(2.5)
