"""Recovery scenarios that disrupt a run in flight: kill the worker-level process
("kill_worker"), restart only the server ("restart"), restart only the component that
runs the work ("restart_scheduler": Airflow's scheduler, Prefect's worker).

Each starts a run whose train step is delayed, waits until a train branch has recorded
its start, acts, then waits (at most ``plan.disruption_timeout_s``) for the run's terminal state
as the tool reports it after the disruption. Survival is judged by that state only: a run
the tool completed is never reported lost because the call that started it gave up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.harness.recovery_counts import RecoveryCounts, registry_version_count
from benchmarks.harness.session import FAULT_STEP, ScenarioFailed, Session, is_success
from benchmarks.tools.base import CapabilityMissing, TaskTiming, ToolAdapter
from shared_ml.config import load_config
from shared_ml.records import RunRecord, StepRecord
from shared_ml.runner import new_run_id

# What a disruption did, in words, and the moments to mark on the timeline.
Action = Callable[[StepRecord], tuple[str, list[tuple[str, datetime]]]]


def scenario_kill_worker(s: Session) -> None:
    if type(s.adapter).kill_worker is ToolAdapter.kill_worker:
        raise CapabilityMissing(f"the {s.tool} adapter has no worker process to kill")

    def kill(step: StepRecord) -> tuple[str, list[tuple[str, datetime]]]:
        if step.pid is None:
            raise ScenarioFailed(f"the record of {step.key} names no process")
        killed_at = datetime.now(UTC)
        what = s.adapter.kill_worker(step.pid)
        return what, [("worker killed", killed_at), ("worker back", datetime.now(UTC))]

    _disrupt(s, "kill_worker", kill)


def scenario_restart(s: Session) -> None:
    _restart(s, "restart", s.adapter.server_component, "server")


def scenario_restart_scheduler(s: Session) -> None:
    _restart(s, "restart_scheduler", s.adapter.work_component, "scheduler or worker")


def _restart(s: Session, scenario: str, component: str | None, role: str) -> None:
    if component is None:
        raise CapabilityMissing(f"{s.tool} runs no separate {role} process here")

    def restart(_step: StepRecord) -> tuple[str, list[tuple[str, datetime]]]:
        begin = datetime.now(UTC)
        s.adapter.restart_component(component)
        what = f"{component} stopped (SIGTERM) and started again, the other components running"
        return what, [(f"{component} restart begins", begin), (f"{component} healthy", now())]

    _disrupt(s, scenario, restart)


def now() -> datetime:
    return datetime.now(UTC)


def _disrupt(s: Session, scenario: str, act: Action) -> None:
    clean = s.clean_run_seconds()
    delay = s.plan.restart_delay_s
    config = s.config_for(scenario)
    storage = load_config(config).storage
    versions_before = registry_versions_now(storage.registry_root)
    run_id = new_run_id(s.tool)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["record"] = s.adapter.run_pipeline(
                config, run_id=run_id, faults={FAULT_STEP: {"delay_s": delay}}
            )
        except BaseException as err:  # judged below, in the harness thread
            outcome["error"] = err

    triggered = now()
    started = time.perf_counter()
    runner = threading.Thread(target=run, name=f"{scenario}-{s.tool}", daemon=True)
    runner.start()
    deadline = time.monotonic() + s.plan.run_timeout_s
    step = _wait_for_step(s, runner, outcome, Path(storage.runs_root) / run_id / "steps", deadline)
    acted_at = now()
    what, markers = act(step)
    s.outcome("ok", f"{what} (pid of the running {step.key}: {step.pid})", scenario_figure(s))
    # Bounded by its own limit, not the run's: a run the tool never ends (Prefect's flow
    # run after its worker restarts) would otherwise hold every session for run_timeout_s.
    runner.join(s.plan.disruption_timeout_s)
    seconds = time.perf_counter() - started
    record = _terminal_record(s, scenario, runner, outcome, run_id, config)
    if record is None:
        return
    s.record(f"recovery.{scenario}_completed", 1.0 if record.status == "success" else 0.0)
    if record.status != "success":
        s.outcome("ok", f"terminal state read from {s.tool}: {record.status}", scenario_figure(s))
    record_counts(s, scenario, [record], storage.registry_root, versions_before)
    # Running at the disruption, whatever their record says later: an orphaned attempt
    # may finish its work while the tool has already given up on it.
    affected = [
        x
        for x in record.steps
        if x.started_at <= acted_at and (x.ended_at is None or x.ended_at > acted_at)
    ]
    _detection(s, scenario, record, affected, acted_at, markers)
    later = [
        x for x in record.steps if x.started_at > acted_at and x.key in {a.key for a in affected}
    ]
    if later:
        first = min(x.started_at for x in later)
        s.record(f"recovery.{scenario}_recovery_s", (first - acted_at).total_seconds())
    elif record.status == "success" and record.ended_at and record.ended_at > acted_at:
        # Nothing ran again: the run carried on and recovered when it ended.
        s.record(f"recovery.{scenario}_recovery_s", (record.ended_at - acted_at).total_seconds())
    else:
        s.unavailable(
            f"recovery.{scenario}_recovery_s",
            f"the run ended {record.status} without running again what was running then",
        )
    if record.status == "success":
        s.record(f"recovery.{scenario}_extra_s", _run_seconds(record, seconds) - clean - delay)
    else:
        s.unavailable(f"recovery.{scenario}_extra_s", f"the run ended {record.status}")
    s.timeline(triggered, [("run", record)], markers)


def _run_seconds(record: RunRecord, measured_s: float) -> float:
    """The run's accepted-to-terminal by the tool's own clock where its record has both
    (as the clean reference is timed), else the harness's measurement around the run."""
    accepted = getattr(record, "accepted_at", None)
    if accepted is not None and record.ended_at is not None:
        return (record.ended_at - accepted).total_seconds()
    return measured_s


def scenario_figure(s: Session) -> str:
    return f"recovery.{s.scenario}_completed"


def _wait_for_step(
    s: Session, runner: threading.Thread, outcome: dict[str, Any], steps: Path, deadline: float
) -> StepRecord:
    """The first train branch's record once it says running (its process is known)."""
    while runner.is_alive():
        for path in sorted(steps.glob(f"{FAULT_STEP}*.attempt-*.json")):
            try:
                step = StepRecord.model_validate_json(path.read_text(encoding="utf-8"))
            except ValueError:
                continue  # replaced atomically, but a reader may still race the rename
            if step.step == FAULT_STEP and step.outcome == "running":
                return step
        if time.monotonic() > deadline:
            raise ScenarioFailed(f"the run did not reach {FAULT_STEP} in {s.plan.run_timeout_s}s")
        time.sleep(0.2)
    ended = outcome.get("record")
    raise ScenarioFailed(
        f"the run ended before {FAULT_STEP} started: "
        + (f"status {ended.status}" if ended is not None else repr(outcome.get("error")))
    )


def _terminal_record(
    s: Session,
    scenario: str,
    runner: threading.Thread,
    outcome: dict[str, Any],
    run_id: str,
    config: Path,
) -> RunRecord | None:
    """The run's record with its terminal state from the tool, read after the
    disruption; None (and the reasons recorded) when there is none."""
    figure = f"recovery.{scenario}_completed"
    if runner.is_alive():
        s.record(figure, 0.0)
        s.outcome(
            "ok",
            f"no terminal state within {s.plan.disruption_timeout_s:.0f} s of the disruption",
            figure,
        )
        return None
    if "record" in outcome:
        return outcome["record"]
    error = outcome.get("error")
    if isinstance(error, CapabilityMissing) or not isinstance(error, Exception):
        raise error  # type: ignore[misc]
    gave_up = f"{type(error).__name__}: " + (str(error).strip().splitlines() or [""])[0][:300]
    try:
        # The call that started the run gave up (e.g. its client while the server was
        # down): ask the tool itself how the run ended.
        record = s.adapter.read_run_record(run_id, config)
    except Exception as err:
        s.unavailable(
            figure,
            f"run_pipeline raised {gave_up}; the run's terminal state could not be read "
            f"back from {s.tool}: {type(err).__name__}: {str(err)[:300]}",
        )
        return None
    s.outcome("ok", f"run_pipeline raised {gave_up}; state read back from the tool", figure)
    return record


def registry_versions_now(registry_root: str) -> int | None:
    """Versions in a scenario's registry, or None where this machine cannot see it."""
    if "://" in registry_root and not registry_root.startswith("file://"):
        return None
    return registry_version_count(registry_root)


def record_counts(
    s: Session,
    scenario: str,
    records: list[RunRecord],
    registry_root: str,
    versions_before: int | None,
) -> None:
    """The scenario's duplicates, lost attempts and registry versions added
    (benchmarks.harness.recovery_counts) over all of its runs."""
    counts = RecoveryCounts.of(records, registry_root, versions_before or 0)
    s.record(f"recovery.{scenario}_duplicates", counts.duplicates)
    s.record(f"recovery.{scenario}_lost_attempts", counts.lost_attempts)
    if versions_before is not None:
        s.record(f"recovery.{scenario}_registry_versions", counts.registry_versions_added)
    else:
        s.unavailable(
            f"recovery.{scenario}_registry_versions",
            "the registry lives on the cluster's store, not readable from here",
        )


def _matches(timing: TaskTiming, step: StepRecord) -> bool:
    """Whether the tool's timing is that attempt: tools name tasks their own way
    (``train``, ``orchbench_ml.train``, ``train-op``), a branch as ``train[forest]``."""
    task, _, rest = timing.task.partition("[")
    branch = rest[:-1] if rest.endswith("]") else None
    name = task.lower().replace("-", "_")
    same_step = name == step.step or name.endswith(("." + step.step, "_" + step.step))
    same_step = same_step or name.startswith(step.step + "_")
    return same_step and branch == step.branch and timing.try_number == step.attempt


def _detection(
    s: Session,
    scenario: str,
    record: RunRecord,
    affected: list[StepRecord],
    acted_at: datetime,
    markers: list[tuple[str, datetime]],
) -> None:
    figure = f"recovery.{scenario}_detection_s"
    if not affected:
        s.unavailable(figure, "no attempt was running at the disruption")
        return
    timings = s.adapter.task_timings(record.run_id)
    ends = [
        t.ended_at
        for t in timings
        for step in affected
        if _matches(t, step)
        and not is_success(t.state)
        and t.ended_at is not None
        and t.ended_at >= acted_at
    ]
    if not ends:
        attempts = ", ".join(f"{a.key} #{a.attempt}" for a in affected)
        s.unavailable(
            figure,
            f"{s.tool} recorded no failed end for the attempts running then ({attempts})"
            if timings
            else "no task timings from the adapter",
        )
        return
    detected = min(ends)
    s.record(figure, (detected - acted_at).total_seconds())
    markers.append(("tool marked the attempt ended", detected))
