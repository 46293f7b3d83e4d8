"""Run records: one structured record per run, the same for every tool.

Each step attempt writes its own small JSON file under ``<runs_root>/<run_id>/steps/``
(first when it starts, again when it ends), so records survive a killed worker: an
attempt whose file still says ``running`` after the run ended was lost. The adapter of
each tool then assembles the run record from those files with ``collect_run_record``.
"""

from __future__ import annotations

import glob
import json
import platform
import sys
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared_ml.artifacts import atomic_write_text
from shared_ml.config import Partition
from shared_ml.spec import task_key

RUN_RECORD_SCHEMA_VERSION = 2  # 2: branches, partition, selection, scoring
Outcome = Literal["running", "success", "failed", "lost"]


class StepError(BaseModel):
    type: str
    message: str
    retryable: bool


class StepRecord(BaseModel):
    step: str
    branch: str | None = None  # the candidate of a per-candidate step
    attempt: int
    started_at: datetime
    ended_at: datetime | None = None
    duration_s: float | None = None
    peak_rss_mb: float | None = None
    outcome: Outcome = "running"
    error: StepError | None = None
    pid: int | None = None
    # When the process the step ran in started (a task's own process, or the flow's for
    # a tool that runs tasks in threads): the "process up" moment of the timestamp scheme.
    process_started_at: datetime | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        """``train[forest]`` for a branch, else the step name."""
        return task_key(self.step, self.branch)


class RunRecord(BaseModel):
    schema_version: int = RUN_RECORD_SCHEMA_VERSION
    run_id: str
    tool: str
    pipeline: str
    status: Literal["success", "failed", "running"]
    config_fingerprint: str
    seed: int
    logical_date: date | None = None
    data_interval: tuple[datetime, datetime] | None = None
    # When the tool accepted the run's trigger, by its own clock; ended_at is the tool's
    # terminal time. Latency figures are timed between the two.
    accepted_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float | None = None
    steps: list[StepRecord] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    prediction_hash: str | None = None
    selected_candidate: str | None = None
    candidates: list[dict[str, Any]] = Field(default_factory=list)  # select's ranking
    registry: dict[str, Any] = Field(default_factory=dict)
    scoring: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    tool_details: dict[str, Any] = Field(default_factory=dict)

    @property
    def step_seconds(self) -> float:
        """Sum of the step execution times of every attempt (for orchestration overhead)."""
        return sum(s.duration_s or 0.0 for s in self.steps)

    def attempts(self, step: str, branch: str | None = None) -> list[StepRecord]:
        """Every recorded attempt of ``step`` (of one branch, if given)."""
        return [s for s in self.steps if s.step == step and (branch is None or s.branch == branch)]


def runtime_versions(tool_packages: tuple[str, ...] = ()) -> dict[str, str]:
    versions = {"python": platform.python_version(), "platform": sys.platform}
    for dist in ("orchbench", "scikit-learn", "numpy", "pandas", *tool_packages):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def run_dir(runs_root: str, run_id: str) -> Path:
    return Path(runs_root) / run_id


def new_step_record_path(runs_root: str, run_id: str, step: str, attempt: int) -> Path:
    """Where a new execution of ``step`` records itself. A caller may execute a step again
    under an attempt number already on record (the same run id run twice, a tool that
    restarts its numbering): that execution gets a file of its own instead of overwriting
    the earlier one's."""
    folder = run_dir(runs_root, run_id) / "steps"
    path = folder / f"{step}.attempt-{attempt}.json"
    rerun = 1
    while path.exists():
        rerun += 1
        path = folder / f"{step}.attempt-{attempt}.run-{rerun}.json"
    return path


def write_step_record(
    runs_root: str, run_id: str, record: StepRecord, path: Path | None = None
) -> Path:
    path = path or new_step_record_path(runs_root, run_id, record.key, record.attempt)
    atomic_write_text(path, record.model_dump_json(indent=2))
    return path


def step_log_path(runs_root: str, run_id: str, key: str, attempt: int) -> Path | None:
    """The log ``execute_step`` kept for this attempt of ``key`` (the latest execution
    when the same attempt number ran more than once), or None."""
    folder = run_dir(runs_root, run_id) / "steps"
    found = [folder / f"{key}.attempt-{attempt}.log"]
    reruns = folder.glob(f"{glob.escape(key)}.attempt-{attempt}.run-*.log")
    found += sorted(reruns, key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    existing = [p for p in found if p.is_file()]
    return existing[-1] if existing else None


def read_step_records(runs_root: str, run_id: str) -> list[StepRecord]:
    folder = run_dir(runs_root, run_id) / "steps"
    if not folder.is_dir():
        return []
    records = [
        StepRecord.model_validate_json(p.read_text(encoding="utf-8"))
        for p in sorted(folder.glob("*.attempt-*.json"))
    ]
    return sorted(records, key=lambda r: (r.started_at, r.key, r.attempt))


def collect_run_record(
    *,
    runs_root: str,
    run_id: str,
    tool: str,
    pipeline: str,
    config_fingerprint: str,
    seed: int,
    status: Literal["success", "failed", "running"] | None = None,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    partition: Partition | None = None,
    tool_packages: tuple[str, ...] = (),
    tool_details: dict[str, Any] | None = None,
) -> RunRecord:
    """Assemble the run record from the step files that every attempt wrote."""
    steps = read_step_records(runs_root, run_id)
    finished = status in ("success", "failed")
    for s in steps:
        if finished and s.outcome == "running":
            s.outcome = "lost"  # the process running it died (e.g. SIGKILL)
    if status is None:
        status = "failed" if any(s.outcome == "failed" for s in steps) else "success"
    # The run's results are the selected candidate's; each step's last success counts.
    results = {s.step: s.metadata for s in steps if s.outcome == "success" and s.branch is None}
    selection = results.get("select", {})
    starts = [s.started_at for s in steps]
    ends = [s.ended_at for s in steps if s.ended_at]
    started_at = started_at or (min(starts) if starts else None)
    ended_at = ended_at or (max(ends) if ends else None)
    duration = (ended_at - started_at).total_seconds() if started_at and ended_at else None
    return RunRecord(
        run_id=run_id,
        tool=tool,
        pipeline=pipeline,
        status=status,
        config_fingerprint=config_fingerprint,
        seed=seed,
        logical_date=partition.logical_date if partition else None,
        data_interval=(partition.interval_start, partition.interval_end) if partition else None,
        started_at=started_at,
        ended_at=ended_at,
        duration_s=duration,
        steps=steps,
        metrics=selection.get("metrics", {}),
        prediction_hash=selection.get("prediction_hash"),
        selected_candidate=selection.get("selected"),
        candidates=selection.get("candidates", []),
        registry=results.get("register", {}).get("registration", {}),
        scoring=results.get("score", {}),
        versions=runtime_versions(tool_packages),
        tool_details=tool_details or {},
    )


def run_record_path(runs_root: str, run_id: str) -> Path:
    return run_dir(runs_root, run_id) / "run.json"


def write_run_record(runs_root: str, record: RunRecord) -> Path:
    path = run_record_path(runs_root, record.run_id)
    atomic_write_text(path, record.model_dump_json(indent=2))
    return path


def load_run_record(path: str | Path) -> RunRecord:
    return RunRecord.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
