"""Recovery scenarios (transient fault, resume, kill, backfill, restart) and the ad-hoc
script comparison: each records what happened, not only how long it took."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.harness import adhoc
from benchmarks.harness.phases import match_tasks
from benchmarks.harness.session import (
    FAULT_STEP,
    NotApplicable,
    ScenarioFailed,
    Session,
)
from benchmarks.tools.base import CapabilityMissing, ToolAdapter
from shared_ml.config import load_config
from shared_ml.records import RunRecord, StepRecord
from shared_ml.spec import PIPELINE


def scenario_transient(s: Session) -> None:
    clean = s.clean_run_seconds()
    faults = {FAULT_STEP: {"transient_attempts": 1}}
    record, seconds, triggered, _ = s.timed_run("transient", faults)
    s.record("recovery.transient_completed", 1.0 if record.status == "success" else 0.0)
    s.record("recovery.transient_extra_s", seconds - clean)
    s.record("recovery.transient_attempts", len(record.steps) - len({x.key for x in record.steps}))
    s.timeline(triggered, [("run", record)])


def _attempt_key(step: StepRecord) -> tuple[str, int, datetime]:
    return (step.key, step.attempt, step.started_at)


def scenario_resume(s: Session) -> None:
    clean = s.clean_run_seconds()
    # More failures than the step's retries allow: the run fails for good. A transient
    # fault (not a non-retryable one) so that a tool resuming in the same run id, whose
    # fault settings persist in the run, gets past it on the next attempt.
    failures = PIPELINE.step(FAULT_STEP).retry.max_retries + 1
    faults = {FAULT_STEP: {"transient_attempts": failures}}
    failed, failed_s, triggered, config = s.timed_run("resume", faults)
    if failed.status == "success":
        raise ScenarioFailed("the run with the hard failure succeeded; nothing to resume")
    resumed_at = datetime.now(UTC)
    started = time.perf_counter()
    resumed = s.adapter.resume_pipeline(failed, config)
    resume_s = time.perf_counter() - started
    before = {_attempt_key(x) for x in failed.steps}
    succeeded_before = {x.key for x in failed.steps if x.outcome == "success"}
    new_attempts = [x for x in resumed.steps if _attempt_key(x) not in before]
    reexecuted = {x.key for x in new_attempts if x.key in succeeded_before}
    s.record("recovery.resume_completed", 1.0 if resumed.status == "success" else 0.0)
    s.record("recovery.resume_reexecuted_steps", len(reexecuted))
    s.record("recovery.resume_time_lost_s", failed_s + resume_s - clean)
    runs = [("failed run", failed)]
    if resumed.run_id != failed.run_id:
        runs.append(("resume", resumed))
    else:
        runs = [("run", resumed)]
    s.timeline(triggered, runs, [("resume triggered", resumed_at)])


def scenario_kill(s: Session) -> None:
    clean = s.clean_run_seconds()
    kill_after = s.plan.kill_after_s
    faults = {FAULT_STEP: {"kill_attempts": 1, "kill_after_s": kill_after}}
    try:
        record, seconds, triggered, _ = s.timed_run("kill", faults)
    except Exception as err:
        # Some adapters raise when the process running the run dies with it: the run did
        # not complete, which is this scenario's answer; the error text says how it ended.
        reason = f"run_pipeline raised {type(err).__name__}: {str(err)[:300]}"
        s.record("recovery.kill_completed", 0.0)
        for key in (
            "recovery.kill_extra_s",
            "recovery.kill_recovery_s",
            "recovery.kill_detection_s",
        ):
            s.unavailable(key, reason)
        return
    attempts = sorted(record.attempts(FAULT_STEP), key=lambda x: x.started_at)
    lost = next((a for a in attempts if a.outcome in ("lost", "running")), None)
    s.record("recovery.kill_completed", 1.0 if record.status == "success" else 0.0)
    markers: list[tuple[str, datetime]] = []
    if lost is None:
        s.timeline(triggered, [("run", record)])
        raise ScenarioFailed(f"no attempt of {FAULT_STEP} was lost: did the kill fault fire?")
    killed_at = lost.started_at + timedelta(seconds=kill_after)
    markers.append(("worker killed", killed_at))
    if record.status == "success":
        s.record("recovery.kill_extra_s", seconds - clean)
    else:
        s.unavailable("recovery.kill_extra_s", f"the run ended {record.status}, no recovery")
    later = [a for a in attempts if a.started_at > lost.started_at]
    if later:
        s.record("recovery.kill_recovery_s", (later[0].started_at - killed_at).total_seconds())
    else:
        s.unavailable("recovery.kill_recovery_s", f"{FAULT_STEP} was not attempted again")
    timings = s.adapter.task_timings(record.run_id)
    tries = match_tasks(timings, [FAULT_STEP])[0][FAULT_STEP]
    killed_try = next((t for t in tries if t.try_number == lost.attempt), None)
    if killed_try is None and tries:
        killed_try = min(tries, key=lambda t: t.started_at or t.ended_at or triggered)
    if killed_try is not None and killed_try.ended_at is not None:
        detected = killed_try.ended_at
        s.record("recovery.kill_detection_s", (detected - killed_at).total_seconds())
        markers.append(("tool marked the attempt ended", detected))
    else:
        s.unavailable(
            "recovery.kill_detection_s",
            "the tool reported no end time for the killed attempt"
            if timings
            else "no task timings from the adapter",
        )
    s.timeline(triggered, [("run", record)], markers)


def scenario_backfill(s: Session) -> None:
    config = s.config_for("backfill")
    # Fresh dates per plan, profile and repetition: the tools keep their history, and a
    # backfill of dates already run is answered from it (idempotency), which would
    # measure a lookup instead of the runs.
    first = s.plan.backfill_origin + timedelta(
        days=(s.plan.profile_number(s.profile) * 100 + s.repetition) * s.plan.backfill_dates
    )
    dates = [first + timedelta(days=i) for i in range(s.plan.backfill_dates)]
    started = time.perf_counter()
    records = s.adapter.backfill(config, dates)
    seconds = time.perf_counter() - started
    if len(records) != len(dates):
        s.outcome("error", f"{len(dates)} dates backfilled but {len(records)} run records")
    s.record("recovery.backfill_runs_per_min", len(dates) / seconds * 60)
    ok = sum(1 for r in records if r.status == "success")
    s.record("recovery.backfill_succeeded", ok / len(dates))


def scenario_restart(s: Session) -> None:
    if type(s.adapter).restart_services is ToolAdapter.restart_services:
        raise CapabilityMissing(f"the {s.tool} adapter has no restart_services()")
    clean = s.clean_run_seconds()
    delay = s.plan.restart_delay_s
    config = s.config_for("restart")
    runs_root = Path(load_config(config).storage.runs_root)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["record"] = s.adapter.run_pipeline(
                config, faults={FAULT_STEP: {"delay_s": delay}}
            )
        except BaseException as err:  # reported below, in the harness thread
            outcome["error"] = err

    triggered = datetime.now(UTC)
    started = time.perf_counter()
    worker = threading.Thread(target=run, name=f"restart-{s.tool}", daemon=True)
    worker.start()
    deadline = time.monotonic() + s.plan.run_timeout_s
    while worker.is_alive() and not list(runs_root.glob(f"*/steps/{FAULT_STEP}*.attempt-*.json")):
        if time.monotonic() > deadline:
            raise ScenarioFailed(f"the run did not reach {FAULT_STEP} in {s.plan.run_timeout_s}s")
        time.sleep(0.2)
    if not worker.is_alive():
        raise ScenarioFailed(f"the run ended before {FAULT_STEP} started: {outcome}")
    restart_begin = datetime.now(UTC)
    try:
        s.adapter.restart_services()
    except CapabilityMissing:
        worker.join(s.plan.run_timeout_s)
        raise
    restart_end = datetime.now(UTC)
    worker.join(max(1.0, deadline - time.monotonic()))
    if worker.is_alive():
        raise ScenarioFailed(
            f"the run did not finish within {s.plan.run_timeout_s}s of the restart"
        )
    seconds = time.perf_counter() - started
    error = outcome.get("error")
    if isinstance(error, Exception) and not isinstance(error, CapabilityMissing):
        # The run itself did not survive the restart (e.g. its client gave up while the
        # server was down): that is the measured answer, not a harness error.
        reason = (
            f"the run did not survive the restart: {type(error).__name__}: "
            + (str(error).strip().splitlines() or [""])[0][:300]
        )
        s.record("recovery.restart_completed", 0.0)
        s.unavailable("recovery.restart_lost_attempts", reason)
        s.unavailable("recovery.restart_extra_s", reason)
        return
    if error is not None:
        raise error
    record: RunRecord = outcome["record"]
    s.record("recovery.restart_completed", 1.0 if record.status == "success" else 0.0)
    s.record("recovery.restart_lost_attempts", sum(1 for x in record.steps if x.outcome == "lost"))
    if record.status == "success":
        s.record("recovery.restart_extra_s", seconds - clean - delay)
    else:
        s.unavailable("recovery.restart_extra_s", f"the run ended {record.status}")
    s.timeline(
        triggered,
        [("run", record)],
        [("restart begins", restart_begin), ("services healthy again", restart_end)],
    )


def scenario_adhoc(s: Session) -> None:
    """The ad-hoc script and the plain runner under the same faults (benchmarks.harness.
    adhoc): measured once per repetition, in the plain-Python session."""
    if s.tool != "local":
        raise NotApplicable("measured in the local session: a plain script vs the plain runner")
    first = s.plan.profiles_for(s.tool)[0]
    if s.profile != first:
        raise NotApplicable(f"measured once per repetition, at profile {first}")
    work = s.work_dir / "adhoc" / f"r{s.repetition}"
    rows = adhoc.compare(
        work,
        s.plan.adhoc_config,
        s.plan.adhoc_daily_config,
        adhoc.DAILY_DATES,
        kill_after_s=s.plan.adhoc_kill_after_s,
        cases=tuple(s.plan.adhoc_cases),
    )
    s.collected.adhoc += [{"repetition": s.repetition, **row} for row in rows]
