"""Recovery scenarios (transient fault, resume, task-process kill, backfill) and the
ad-hoc script comparison: each records what happened, not only how long it took. The
scenarios that disrupt a run in flight (kill_worker, restart, restart_scheduler) are in
``scenarios_disruption``. Every recovery scenario also counts duplicates, lost attempts
and registry versions added (``recovery_counts``)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml

from benchmarks.harness import adhoc
from benchmarks.harness.phases import match_tasks
from benchmarks.harness.scenarios_disruption import record_counts, registry_versions_now
from benchmarks.harness.session import (
    FAULT_STEP,
    NotApplicable,
    ScenarioFailed,
    Session,
)
from shared_ml.config import load_config
from shared_ml.records import StepRecord
from shared_ml.spec import PIPELINE

# The backfill's steady state: the runs that end after this many have ended.
BACKFILL_WARM_UP_RUNS = 3


def _registry_before(s: Session, label: str) -> tuple[str, int | None]:
    """The registry of the scenario's config (``Session.config_for(label)``, the one
    ``timed_run(label)`` uses) and its version count before the scenario's runs."""
    root = load_config(s.config_for(label)).storage.registry_root
    return root, registry_versions_now(root)


def scenario_transient(s: Session) -> None:
    clean = s.clean_run_seconds()
    faults = {FAULT_STEP: {"transient_attempts": 1}}
    registry, before = _registry_before(s, "transient")
    record, seconds, triggered, _ = s.timed_run("transient", faults)
    record_counts(s, "transient", [record], registry, before)
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
    registry, before = _registry_before(s, "resume")
    failed, failed_s, triggered, config = s.timed_run("resume", faults)
    if failed.status == "success":
        raise ScenarioFailed("the run with the hard failure succeeded; nothing to resume")
    resumed_at = datetime.now(UTC)
    started = time.perf_counter()
    resumed = s.adapter.resume_pipeline(failed, config)
    resume_s = time.perf_counter() - started
    # Under the same run id the resumed record holds the failed run's steps too.
    same_run = resumed.run_id == failed.run_id
    record_counts(s, "resume", [resumed] if same_run else [failed, resumed], registry, before)
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
    registry, before = _registry_before(s, "kill")
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
            "recovery.kill_duplicates",
            "recovery.kill_lost_attempts",
            "recovery.kill_registry_versions",
        ):
            s.unavailable(key, reason)
        return
    record_counts(s, "kill", [record], registry, before)
    attempts = sorted(record.attempts(FAULT_STEP), key=lambda x: x.started_at)
    lost = next((a for a in attempts if a.outcome in ("lost", "running")), None)
    s.record("recovery.kill_completed", 1.0 if record.status == "success" else 0.0)
    markers: list[tuple[str, datetime]] = []
    if lost is None:
        s.timeline(triggered, [("run", record)])
        raise ScenarioFailed(f"no attempt of {FAULT_STEP} was lost: did the kill fault fire?")
    killed_at = lost.started_at + timedelta(seconds=kill_after)
    markers.append(("task process killed", killed_at))
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
    """K dates of the daily partitioned config through the tool's own backfill. Every
    adapter runs one backfill run at a time (in date order, so each promotion decision
    sees the earlier dates' models): equal concurrency across tools."""
    # Fresh dates per plan, profile and repetition: the tools keep their history, and a
    # backfill of dates already run is answered from it (idempotency), which would
    # measure a lookup instead of the runs.
    first = s.plan.backfill_origin + timedelta(
        days=(s.plan.profile_number(s.profile) * 100 + s.repetition) * s.plan.backfill_dates
    )
    dates = [first + timedelta(days=i) for i in range(s.plan.backfill_dates)]
    config = _backfill_config(s, dates)
    registry = load_config(config).storage.registry_root
    before = registry_versions_now(registry)
    started = time.perf_counter()
    records = s.adapter.backfill(config, dates)
    seconds = time.perf_counter() - started
    if len(records) != len(dates):
        s.outcome("error", f"{len(dates)} dates backfilled but {len(records)} run records")
    s.record("recovery.backfill_total_s", seconds)
    s.record("recovery.backfill_runs_per_min", len(dates) / seconds * 60)
    ends = sorted(r.ended_at for r in records if r.ended_at is not None)
    steady = ends[BACKFILL_WARM_UP_RUNS - 1 :]
    if len(steady) >= 2 and steady[-1] > steady[0]:
        per_s = (len(steady) - 1) / (steady[-1] - steady[0]).total_seconds()
        s.record("recovery.backfill_steady_runs_per_min", per_s * 60)
    else:
        s.unavailable(
            "recovery.backfill_steady_runs_per_min",
            f"{len(ends)} runs with an end time: a steady state needs more than "
            f"{BACKFILL_WARM_UP_RUNS} (plan.backfill_dates is {s.plan.backfill_dates})",
        )
    ok = sum(1 for r in records if r.status == "success")
    s.record("recovery.backfill_succeeded", ok / len(dates))
    record_counts(s, "backfill", records, registry, before)


def _backfill_config(s: Session, dates: list[date]) -> Path:
    """The plan's backfill config (configs/daily.yaml) with its storage in the session,
    and (local target) its partitions copied to the backfill's fresh dates: date i reads
    the i-th bundled partition (configs/data/daily, made by shared_ml.partitions)."""
    config = s.config_for("backfill", source=s.plan.backfill_config)
    if s.plan.target != "local":
        return config  # the cluster's pods read the config's own (shared) data URL
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    source = raw["data"]["source"]
    bundled = sorted(s.plan.backfill_data.glob("*.csv"))
    if len(bundled) < len(dates):
        raise ScenarioFailed(
            f"{s.plan.backfill_data} has {len(bundled)} partitions, the backfill needs "
            f"{len(dates)}: extend it with `python -m shared_ml.partitions --end <date>`"
        )
    folder = config.parent / f"{config.stem}-partitions"
    folder.mkdir(parents=True, exist_ok=True)
    for day, partition in zip(dates, bundled, strict=False):
        (folder / f"{day.isoformat()}.csv").write_bytes(partition.read_bytes())
    source["url"] = str(folder / "{ds}.csv")
    config.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return config


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
