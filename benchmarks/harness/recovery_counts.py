"""What a recovery scenario counts, from the step records and the registry it wrote:

- duplicates: executions of a task (a step, or one branch ``train[c]``) of one partition
  (logical date) that started after an earlier-started execution of the same task for the
  same partition had succeeded, i.e. work that had already been done and was done again;
- lost attempts: executions whose record still says ``running`` (or ``lost``) once the
  run is over, i.e. a process died mid-step and nobody recorded its end;
- registry versions added: model versions in the scenario's own registry after its runs
  minus before (the registry returns the existing version for a model it already has,
  so a duplicate ``register`` adds none while a re-trained, different model would).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from shared_ml.records import RunRecord, StepRecord

LOST_OUTCOMES = ("lost", "running")


def duplicate_executions(steps: Iterable[StepRecord]) -> list[StepRecord]:
    """The executions that repeated a task which had already succeeded (see module doc).
    Pass the steps of every run of the scenario together (a resume under a new run id)."""
    by_task: dict[str, list[StepRecord]] = defaultdict(list)
    for step in steps:
        by_task[step.key].append(step)
    duplicates = []
    for executions in by_task.values():
        executions.sort(key=lambda x: x.started_at)
        succeeded_before = False
        for execution in executions:
            if succeeded_before:
                duplicates.append(execution)
            succeeded_before = succeeded_before or execution.outcome == "success"
    return duplicates


def lost_attempts(steps: Iterable[StepRecord]) -> list[StepRecord]:
    """Executions that never recorded an end (their process died mid-step)."""
    return [s for s in steps if s.outcome in LOST_OUTCOMES]


def registry_version_count(registry_root: str | Path) -> int:
    """Model versions in every registry under ``registry_root`` (one index.json per
    registered model name); 0 when nothing was registered yet."""
    root = Path(str(registry_root).removeprefix("file://"))
    total = 0
    for index in sorted(root.glob("*/index.json")):
        try:
            versions = json.loads(index.read_text(encoding="utf-8"))["versions"]
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{index}: unreadable registry index ({err!r})") from None
        total += len(versions)
    return total


@dataclass(frozen=True)
class RecoveryCounts:
    duplicates: int
    lost_attempts: int
    registry_versions_added: int

    @classmethod
    def of(
        cls, records: Iterable[RunRecord], registry_root: str | Path, versions_before: int
    ) -> RecoveryCounts:
        records = list(records)
        steps = [s for r in records for s in r.steps]
        # A task is the same work only within one partition: in a backfill, date 2's
        # `train` after date 1's is new work. Runs of the same date (or undated: a resume
        # under a new run id) are compared together.
        by_partition: dict[object, list[StepRecord]] = defaultdict(list)
        for record in records:
            by_partition[record.logical_date].extend(record.steps)
        return cls(
            duplicates=sum(len(duplicate_executions(p)) for p in by_partition.values()),
            lost_attempts=len(lost_attempts(steps)),
            registry_versions_added=registry_version_count(registry_root) - versions_before,
        )
