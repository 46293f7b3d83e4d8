"""The one interface through which the CLI and the benchmark harness drive every tool.

An adapter runs in the core environment. It reaches its tool only by starting that
tool's processes in the tool's own environment or by talking to the tool's HTTP API.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

from shared_ml.records import RunRecord

Profile = Literal["defaults", "tuned"]
WorkloadShape = Literal["chain", "fanout"]
ExecutionModel = Literal["in-process", "process-per-task", "pod-per-step"]
BackfillProgress = Callable[[date, RunRecord], None]


class CapabilityMissing(Exception):
    """The tool (or this adapter's setting of it) cannot do what was asked: restart its
    services, resume, run a workload, backfill, read step logs. Not a stub: the message
    says why, and the harness reports the scenario as "not supported"."""


class BackfillNotSupported(CapabilityMissing):
    """Raised by ``ToolAdapter.backfill`` when the tool cannot backfill in this setting
    (e.g. Kubeflow Pipelines' local runner has no scheduler). The CLI maps it to exit 2;
    the message says what to do instead."""


@dataclass
class TaskTiming:
    """One task attempt: the tool's own start/end fields, and the moments of the one
    timestamp scheme (benchmarks/tools/moments.py) that the tool and the step records give.

    ``queued_at``/``started_at``/``ended_at`` are the tool's fields as it names them (kept
    for the recovery figures and the run records); the phases use only the moments. A
    moment the tool does not record is None.
    """

    task: str
    try_number: int
    state: str
    queued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    dispatched_at: datetime | None = None
    process_up_at: datetime | None = None
    work_started_at: datetime | None = None
    work_ended_at: datetime | None = None
    persisted_at: datetime | None = None


@dataclass
class WorkloadResult:
    """A run of the no-op scaling workload (chain of N or fan-out of width W)."""

    shape: WorkloadShape
    size: int
    run_id: str
    status: str
    triggered_at: datetime  # the harness's clock, just before the trigger
    finished_at: datetime  # the tool's own end of the run
    tasks: list[TaskTiming] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    # When the tool accepted the trigger, by its own clock (moments.py); None: unknown.
    accepted_at: datetime | None = None

    @property
    def end_to_end_s(self) -> float | None:
        """Accepted to terminal, both the tool's timestamps; None without ``accepted_at``."""
        if self.accepted_at is None:
            return None
        return (self.finished_at - self.accepted_at).total_seconds()


@dataclass
class ServiceInfo:
    """What ``start_services`` started: pids for footprint, URL, cold start."""

    url: str | None
    pids: list[int]
    cold_start_s: float | None
    profile: Profile = "defaults"
    details: dict[str, Any] = field(default_factory=dict)


def _epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def noop_times(runs_root: str, run_id: str) -> dict[str, dict[str, float]]:
    """What ``shared_ml.workloads.noop`` wrote per task of the run: start, end, pid and
    process_started (epoch seconds); empty if the run wrote nothing."""
    folder = Path(runs_root) / run_id / "tasks"
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(folder.glob("*.json"))
    }


def with_noop_moments(timings: list[TaskTiming], runs_root: str, run_id: str) -> None:
    """Fill work start/end and process up of each timing from the no-op files (by task
    name; a workload task runs once)."""
    times = noop_times(runs_root, run_id)
    for t in timings:
        found = times.get(t.task)
        if found:
            t.work_started_at = _epoch(found["start"])
            t.work_ended_at = _epoch(found["end"])
            t.process_up_at = _epoch(found.get("process_started"))


def noop_task_timings(runs_root: str, run_id: str) -> list[TaskTiming]:
    """Task timings written by ``shared_ml.workloads.noop`` under the run's folder, for
    tools whose API does not report them (plain Python, KFP's local runner): the work
    moments and process up; the tool's own fields are the work's."""
    timings = []
    for task, times in noop_times(runs_root, run_id).items():
        timings.append(
            TaskTiming(
                task=task,
                try_number=1,
                state="success",
                queued_at=None,
                started_at=_epoch(times["start"]),
                ended_at=_epoch(times["end"]),
                process_up_at=_epoch(times.get("process_started")),
                work_started_at=_epoch(times["start"]),
                work_ended_at=_epoch(times["end"]),
            )
        )
    return timings


def _at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads, all started together; their results or exceptions."""
    if not calls:
        return []
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="at-once") as pool:
        futures = [pool.submit(call) for call in calls]
    return [f.exception() or f.result() for f in futures]


class ToolAdapter(ABC):
    name: ClassVar[str]
    # How tasks execute (in the flow's process, a process each, a pod each): verdicts
    # compare only tools of the same model (benchmarks/report/recommend.py).
    execution_model: ClassVar[ExecutionModel]
    # The path a run takes through the tool, in words, recorded beside every figure:
    # e.g. "scheduler + LocalExecutor (process per task)". A subclass sets it, on the
    # class or, when a constructor argument picks the path, on the instance.
    execution_path: str
    # The tool's metadata database ("sqlite", "postgres ..."); None: the tool keeps none.
    database: str | None = None
    # Python distributions whose versions are recorded beside every figure.
    packages: ClassVar[tuple[str, ...]] = ()
    # How often the adapter asks the tool whether a run ended (seconds); None: it does
    # not poll (it waits for a process). Outside every timer; recorded in results.json.
    poll_interval_s: float | None = None
    # Moments of the timestamp scheme (moments.py) this tool does not record, and why:
    # the report's reason when a phase is unavailable.
    moment_gaps: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        target: Literal["local", "cluster"] = "local",
        url: str | None = None,
        profile: Profile = "defaults",
    ) -> None:
        self.target = target
        self.url = url
        self.profile = profile
        # Set by a caller that shows progress (the CLI): told as each backfill date ends.
        self.on_backfill_progress: BackfillProgress | None = None

    # --- services -----------------------------------------------------------------
    def start_services(self) -> ServiceInfo | None:
        """Start the tool's local servers (if any) and return once they are healthy."""
        return None

    def stop_services(self) -> None:
        """Stop whatever ``start_services`` started; no orphans."""
        return None

    def services_left_running(self) -> str | None:
        """If a command started this tool's services as a side effect and left them up (for
        the next command to reuse), what is running and how to stop it; else None."""
        return None

    def service_pids(self) -> list[int]:
        return []

    def restart_services(self) -> None:
        """Stop and restart the tool's services while a run may be in flight; return once
        they are healthy again. Optional; the benchmark's restart scenarios restart one
        component at a time instead (``restart_component``)."""
        raise CapabilityMissing(f"{self.name} has no restart_services")

    # --- disruption (the kill_worker, restart and restart_scheduler scenarios) -------
    # The component a server-only restart restarts, and the one that runs the work (a
    # scheduler- or worker-only restart); None: the tool has no such process here.
    server_component: ClassVar[str | None] = None
    work_component: ClassVar[str | None] = None

    def restart_component(self, component: str) -> None:
        """Stop one service component (SIGTERM, as an operator's restart would) and start
        it again, the others left running; return once it is healthy again."""
        raise CapabilityMissing(f"{self.name} has no service component {component!r} to restart")

    def kill_worker(self, step_pid: int) -> str:
        """SIGKILL the worker-level process of a run in flight, ``step_pid`` being the
        process of a running step (from its step record), then bring the killed component
        back as a process supervisor would. Returns what was killed and what was brought
        back, in words, for the report."""
        raise CapabilityMissing(f"{self.name} has no worker process to kill")

    def read_run_record(self, run_id: str, config_path: Path) -> RunRecord:
        """The run record of ``run_id`` read from the tool itself once the run is in a
        terminal state (after a restart, when the call that started the run gave up)."""
        raise CapabilityMissing(f"{self.name} cannot read a run back by its id")

    # --- work ---------------------------------------------------------------------
    @abstractmethod
    def run_pipeline(
        self,
        config_path: Path,
        *,
        seed: int | None = None,
        run_id: str | None = None,
        faults: dict[str, dict[str, Any]] | None = None,
        logical_date: date | None = None,
    ) -> RunRecord:
        """Run the ML pipeline end to end through the tool and return its run record.

        ``logical_date`` is the date the run stands for (it picks the data partition);
        ``None`` means a manual run for today, as the tool itself dates one."""

    def resume_pipeline(self, failed: RunRecord, config_path: Path) -> RunRecord:
        """Re-run after a failure, reusing what the tool lets it reuse (cleared tasks,
        cached results). Steps re-executed appear in the returned record."""
        raise CapabilityMissing(f"{self.name} has no resume")

    def run_workload(self, shape: WorkloadShape, size: int) -> WorkloadResult:
        """Run a chain of ``size`` no-op tasks, or a fan-out of width ``size``."""
        raise CapabilityMissing(f"{self.name} has no scaling workload")

    def run_workloads_at_once(
        self, shape: WorkloadShape, size: int, count: int
    ) -> list[WorkloadResult | BaseException]:
        """Start ``count`` runs of one workload together and wait for all of them (the
        throughput scenario). Each entry is the run's result, or what it raised.

        By default one thread per run calls ``run_workload``; an adapter whose calls must
        stay on the main thread, or that can trigger many runs and then wait for them
        all, overrides it."""
        return _at_once([lambda: self.run_workload(shape, size)] * count)

    def run_pipelines_at_once(
        self, runs: list[tuple[Path, date]]
    ) -> list[RunRecord | BaseException]:
        """Start one ML pipeline run per ``(config, logical date)`` together and wait for
        all of them (the throughput scenario). Each entry is the run's record, or what it
        raised. Distinct dates: a tool may keep one run per date."""
        return _at_once(
            [
                (lambda config=config, day=day: self.run_pipeline(config, logical_date=day))
                for config, day in runs
            ]
        )

    def backfill(self, config_path: Path, dates: list[date]) -> list[RunRecord]:
        """Run the pipeline once per date through the tool's own backfill mechanism;
        return one run record per date, in date order. An adapter that learns of each
        date's end as it happens calls ``report_backfill_progress``. A tool that cannot
        backfill in this setting raises ``BackfillNotSupported`` saying what to do instead."""
        raise CapabilityMissing(f"{self.name} has no backfill")

    def report_backfill_progress(self, day: date, record: RunRecord) -> None:
        callback = getattr(self, "on_backfill_progress", None)  # a subclass may skip __init__
        if callback is not None:
            callback(day, record)

    def step_log(self, config_path: Path, record: RunRecord, step: str, attempt: int) -> str:
        """The log of one attempt of ``step`` (``train[forest]`` for a branch) in the run
        ``record``, read through the tool's own API or store (``orchbench logs``)."""
        raise CapabilityMissing(f"{self.name} cannot read step logs")

    def task_timings(self, run_id: str) -> list[TaskTiming]:
        """Per-task queued/start/end times and try numbers from the tool's own API."""
        return []
