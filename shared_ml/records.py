"""Run records: one structured record per run, the same for every tool.

Each step attempt writes its own small JSON file under ``<runs_root>/<run_id>/steps/``
(first when it starts, again when it ends), so records survive a killed worker: an
attempt whose file still says ``running`` after the run ended was lost. The adapter of
each tool then assembles the run record from those files with ``collect_run_record``.

``runs_root`` may be a local path or an object-store URL (``s3://...``, through fsspec):
the step files, the step logs and ``run.json`` are each written whole, so a reader (a
pod, or ``orchbench`` through a port-forward) sees a complete file or none. Read a run's
record with ``read_run_record(runs_root, run_id)``.
"""

from __future__ import annotations

import platform
import re
import sys
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from shared_ml import storage
from shared_ml.config import Partition
from shared_ml.errors import OrchbenchError
from shared_ml.spec import task_key

RUN_RECORD_SCHEMA_VERSION = 2  # 2: branches, partition, selection, scoring
Outcome = Literal["running", "success", "failed", "lost"]
RUN_RECORD_NAME = "run.json"


class RunRecordError(OrchbenchError):
    """A run record is missing, unreadable or not a run record. Names its location."""

    def __init__(self, location: str, problem: str) -> None:
        self.location = location
        self.problem = problem
        super().__init__(f"run record {location}: {problem}")


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


def _local_only(runs_root: str, instead: str) -> None:
    if storage.is_remote(runs_root):
        raise ValueError(f"{runs_root!r} is not a local path; use {instead}")


def run_dir(runs_root: str, run_id: str) -> Path:
    """The run's folder under a local ``runs_root`` (``run_location`` takes URLs too)."""
    _local_only(runs_root, "run_location()")
    return Path(runs_root.removeprefix("file://")) / run_id


def run_location(runs_root: str, run_id: str) -> str:
    """The run's folder: a path or a URL, like ``runs_root``."""
    return storage.join(runs_root, run_id)


def _steps_location(runs_root: str, run_id: str) -> str:
    return storage.join(runs_root, run_id, "steps")


def new_step_record_path(runs_root: str, run_id: str, step: str, attempt: int) -> str:
    """Where a new execution of ``step`` records itself. A caller may execute a step again
    under an attempt number already on record (the same run id run twice, a tool that
    restarts its numbering): that execution gets a file of its own instead of overwriting
    the earlier one's."""
    folder = _steps_location(runs_root, run_id)
    taken = set(storage.list_names(folder, f"{_glob_escape(step)}.attempt-{attempt}*.json"))
    name, rerun = f"{step}.attempt-{attempt}.json", 1
    while name in taken:
        rerun += 1
        name = f"{step}.attempt-{attempt}.run-{rerun}.json"
    return storage.join(folder, name)


def write_step_record(
    runs_root: str, run_id: str, record: StepRecord, path: str | None = None
) -> str:
    """Write the attempt's record (at ``path`` once it has one); returns its location."""
    path = path or new_step_record_path(runs_root, run_id, record.key, record.attempt)
    storage.write_text(path, record.model_dump_json(indent=2))
    return path


def step_log_location(step_record_location: str) -> str:
    """Where the log of the attempt recorded at ``step_record_location`` is kept."""
    return step_record_location.removesuffix(".json") + ".log"


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def _latest_step_log(runs_root: str, run_id: str, key: str, attempt: int) -> str | None:
    folder = _steps_location(runs_root, run_id)
    names = storage.list_names(folder, f"{_glob_escape(key)}.attempt-{attempt}*.log")
    first = f"{key}.attempt-{attempt}.log"
    reruns = {n: n.removesuffix(".log").rsplit("-", 1)[1] for n in names if n != first}
    ordered = ([first] if first in names else []) + sorted(
        (n for n, number in reruns.items() if number.isdigit()), key=lambda n: int(reruns[n])
    )
    return storage.join(folder, ordered[-1]) if ordered else None


def step_log_path(runs_root: str, run_id: str, key: str, attempt: int) -> Path | None:
    """The log ``execute_step`` kept for this attempt of ``key`` under a local
    ``runs_root`` (the latest execution when the same attempt number ran more than
    once), or None. ``read_step_log`` takes URLs too."""
    _local_only(runs_root, "read_step_log()")
    found = _latest_step_log(runs_root, run_id, key, attempt)
    return None if found is None else Path(found.removeprefix("file://"))


def read_step_log(runs_root: str, run_id: str, key: str, attempt: int) -> str | None:
    """The text of the log ``step_log_path`` names, wherever ``runs_root`` is; or None."""
    found = _latest_step_log(runs_root, run_id, key, attempt)
    return None if found is None else storage.read_text(found)


def read_step_records(runs_root: str, run_id: str) -> list[StepRecord]:
    folder = _steps_location(runs_root, run_id)
    locations = [storage.join(folder, n) for n in storage.list_names(folder, "*.attempt-*.json")]
    records = []
    for location, content in sorted(storage.read_many(locations).items()):
        try:
            records.append(StepRecord.model_validate_json(content))
        except ValidationError as err:
            raise RunRecordError(location, f"not a step record: {_first_line(err)}") from None
    return sorted(records, key=lambda r: (r.started_at, r.key, r.attempt))


def _first_line(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0]


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
    """``run.json`` of a run under a local ``runs_root`` (``run_record_location`` takes
    URLs too)."""
    return run_dir(runs_root, run_id) / RUN_RECORD_NAME


def run_record_location(runs_root: str, run_id: str) -> str:
    """``run.json`` of a run: a path or a URL, like ``runs_root``."""
    return storage.join(runs_root, run_id, RUN_RECORD_NAME)


def write_run_record(runs_root: str, record: RunRecord) -> str:
    """Write ``run.json`` whole (a rename locally, one PUT remotely); returns its location."""
    location = run_record_location(runs_root, record.run_id)
    storage.write_text(location, record.model_dump_json(indent=2))
    return location


def load_run_record(location: str | Path) -> RunRecord:
    """The run record at ``location`` (a path or a URL). ``RunRecordError`` names the
    location when it is missing, unreadable or not a run record."""
    location = str(location)
    try:
        content = storage.read_text(location)
    except FileNotFoundError:
        raise RunRecordError(location, "not found") from None
    except Exception as err:  # a refused port-forward, missing keys, a 403: all unreadable
        raise RunRecordError(location, f"unreadable ({type(err).__name__}: {err})") from None
    try:
        return RunRecord.model_validate_json(content)
    except ValidationError as err:
        raise RunRecordError(location, f"not a run record: {_first_line(err)}") from None


def read_run_record(runs_root: str, run_id: str) -> RunRecord:
    """The record of ``run_id`` under ``runs_root`` (a path or a URL such as
    ``s3://bucket/var/runs``); ``RunRecordError`` naming the location if it cannot be read."""
    return load_run_record(run_record_location(runs_root, run_id))
