"""The recovery scenarios' counts (benchmarks.harness.recovery_counts) on constructed step
records and registry indexes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.harness.recovery_counts import (
    RecoveryCounts,
    duplicate_executions,
    lost_attempts,
    registry_version_count,
)
from shared_ml.records import RunRecord, StepRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def step(key: str, attempt: int, start_s: float, outcome: str, end_s: float | None = None):
    name, _, rest = key.partition("[")
    return StepRecord(
        step=name,
        branch=rest[:-1] or None,
        attempt=attempt,
        started_at=T0 + timedelta(seconds=start_s),
        ended_at=None if end_s is None else T0 + timedelta(seconds=end_s),
        outcome=outcome,  # type: ignore[arg-type]
    )


def run(*steps: StepRecord, run_id: str = "r1", logical_date: date | None = None) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        logical_date=logical_date,
        tool="local",
        pipeline="p",
        status="success",
        config_fingerprint="f",
        seed=1,
        steps=list(steps),
    )


def test_a_task_run_again_after_it_succeeded_is_a_duplicate() -> None:
    # Airflow's restart: train[forest] succeeded, then ran again as try 2.
    steps = [
        step("ingest", 1, 0, "success", 1),
        step("train[forest]", 1, 2, "success", 5),
        step("train[forest]", 2, 9, "success", 12),
        step("train[logreg]", 1, 2, "success", 4),
    ]
    assert [(s.key, s.attempt) for s in duplicate_executions(steps)] == [("train[forest]", 2)]


def test_retries_after_failures_are_not_duplicates() -> None:
    steps = [
        step("train[forest]", 1, 0, "failed", 1),
        step("train[forest]", 2, 2, "lost"),
        step("train[forest]", 3, 5, "success", 6),
    ]
    assert duplicate_executions(steps) == []


def test_a_retry_that_overlaps_an_orphan_which_then_succeeded_is_a_duplicate() -> None:
    # A killed worker's task finishes anyway (started first, succeeded) while the tool
    # already runs the task again: the second execution repeats done work.
    steps = [step("train[hgb]", 1, 0, "success", 10), step("train[hgb]", 2, 4, "success", 8)]
    assert [s.attempt for s in duplicate_executions(steps)] == [2]


def test_duplicates_are_counted_per_branch_and_across_runs() -> None:
    failed = run(step("train[a]", 1, 0, "success", 1), step("train[b]", 1, 0, "failed", 1))
    resumed = run(
        step("train[a]", 1, 5, "success", 6),
        step("train[b]", 1, 5, "success", 6),
        run_id="r2",
    )
    counts = RecoveryCounts.of([failed, resumed], "/nonexistent", 0)
    assert counts.duplicates == 1  # train[a] only: train[b] had never succeeded


def test_a_backfills_dates_are_separate_work_and_a_rerun_date_is_a_duplicate() -> None:
    # A backfill of two dates runs every task once per date: no duplicates. A date run
    # again after it had succeeded (a re-trigger under a new run id) repeats its work.
    days = [date(2026, 1, 1), date(2026, 1, 2)]
    first, second = (
        run(step("ingest", 1, n, "success", n + 1), run_id=f"d{n}", logical_date=day)
        for n, day in enumerate(days)
    )
    assert RecoveryCounts.of([first, second], "/nonexistent", 0).duplicates == 0
    again = run(step("ingest", 1, 9, "success", 10), run_id="d0-again", logical_date=days[0])
    assert RecoveryCounts.of([first, second, again], "/nonexistent", 0).duplicates == 1


def test_lost_attempts_are_those_without_an_end() -> None:
    steps = [
        step("train[a]", 1, 0, "lost"),
        step("train[a]", 2, 1, "success", 2),
        step("score", 1, 3, "running"),
        step("select", 1, 2, "failed", 3),
    ]
    assert sorted(s.key for s in lost_attempts(steps)) == ["score", "train[a]"]


def write_index(root: Path, name: str, versions: int) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    index = {
        "schema_version": 1,
        "champion": 1,
        "versions": [{"version": n + 1} for n in range(versions)],
    }
    (folder / "index.json").write_text(json.dumps(index), encoding="utf-8")


def test_registry_versions_are_summed_over_the_models_of_a_root(tmp_path: Path) -> None:
    assert registry_version_count(tmp_path / "empty") == 0
    write_index(tmp_path, "orchbench-ml", 2)
    write_index(tmp_path, "orchbench-daily", 3)
    assert registry_version_count(tmp_path) == 5
    assert registry_version_count(f"file://{tmp_path}") == 5
    counts = RecoveryCounts.of([run()], tmp_path, versions_before=4)
    assert (counts.duplicates, counts.lost_attempts, counts.registry_versions_added) == (0, 0, 1)


def test_an_unreadable_registry_index_is_named(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "index.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"m/index.json: unreadable registry index"):
        registry_version_count(tmp_path)
