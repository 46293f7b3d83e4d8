"""Run a benchmark plan: every tool through its adapter, interleaved, every scenario.

Order: per repetition, the profiles and within each the tools in an order shuffled from
``plan.order_seed`` (``plan.session_order``, recorded in results.json), so slow drifts of
a shared machine spread over all tools and no tool always runs first. Each (tool, profile, repetition) is a session: the tool's services are
started, its scenarios run, its services stopped, before the next tool starts, so no tool
is measured while another one's servers are running.

A scenario a tool cannot do is recorded, never dropped: ``NotImplementedError`` from the
adapter -> "not_supported" (with the adapter's message), no services for a services
figure -> "not_applicable", a figure the adapter cannot report -> "unavailable", any other
exception -> "error" with the message.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from benchmarks.harness import adhoc, setup_cost
from benchmarks.harness.demo import demo_run
from benchmarks.harness.figures import FIGURES, SCENARIOS
from benchmarks.harness.phases import match_tasks, task_phases
from benchmarks.harness.plan import Plan, session_order
from benchmarks.tools import get_adapter
from benchmarks.tools.base import ToolAdapter
from shared_ml.config import load_config
from shared_ml.records import RunRecord, StepRecord
from shared_ml.spec import PIPELINE
from shared_ml.workloads import workload_graph

SUCCESS_STATES = {"success", "succeeded", "completed"}
PIPELINE_UPSTREAM = {s.name: sorted(s.upstream) for s in PIPELINE.steps}
FAULT_STEP = "train"
# Scenarios that run the ML pipeline (and so come after one warm-up run).
PIPELINE_SCENARIOS = {"latency", "transient", "resume", "kill", "backfill", "restart"}


class NotApplicable(Exception):
    """The scenario means nothing for this tool (e.g. cold start of a tool with no server)."""


class ScenarioFailed(Exception):
    """The scenario ran but its premise broke (e.g. a clean run failed)."""


def is_success(status: str) -> bool:
    return status.lower() in SUCCESS_STATES


# --- what a benchmark collects -------------------------------------------------------------
@dataclass
class Collected:
    observations: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    timelines: list[dict[str, Any]] = field(default_factory=list)
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    adhoc: list[dict[str, Any]] = field(default_factory=list)  # the script-vs-runner cases


@dataclass
class Session:
    """One tool at one profile in one repetition, with its services up."""

    plan: Plan
    tool: str
    profile: str
    repetition: int
    adapter: ToolAdapter
    execution_model: str
    collected: Collected
    work_dir: Path
    clean_end_to_end_s: float | None = None
    scenario: str = ""

    def record(self, key: str, value: float, **params: Any) -> None:
        if key not in FIGURES:
            raise KeyError(f"figure {key!r} is not defined in benchmarks.harness.figures")
        self.collected.observations.append(
            {
                "figure": key,
                "scenario": FIGURES[key].scenario,
                "tool": self.tool,
                "profile": self.profile,
                "execution_model": self.execution_model,
                "repetition": self.repetition,
                "params": params,
                "value": float(value),
            }
        )

    def outcome(
        self,
        status: str,
        reason: str = "",
        figure: str | None = None,
        duration_s: float | None = None,
    ) -> None:
        entry = {
            "scenario": self.scenario,
            "figure": figure,
            "tool": self.tool,
            "profile": self.profile,
            "repetition": self.repetition,
            "status": status,
            "reason": reason,
        }
        if duration_s is not None:
            entry["duration_s"] = round(duration_s, 3)
        self.collected.outcomes.append(entry)

    def unavailable(self, figure: str, reason: str) -> None:
        self.outcome("unavailable", reason, figure)

    def config_for(self, label: str, source: Path | None = None) -> Path:
        """A copy of the plan's pipeline config (or ``source``) with storage in a fresh
        folder of its own, so no run reuses another run's (content-addressed) artifacts."""
        source = source or self.plan.pipeline_config
        raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        storage = raw.get("storage") or {}
        # On a cluster the tool's pods cannot see this machine's folders: keep the
        # config's own (shared, e.g. s3://) storage there; run ids keep runs apart.
        local_storage = not any("://" in str(v) for v in storage.values())
        if self.plan.target == "local" and local_storage:
            base = self.work_dir / "runs" / f"{self.tool}-{self.profile}-r{self.repetition}" / label
            raw["storage"] = {
                "artifact_root": str(base / "artifacts"),
                "registry_root": str(base / "registry"),
                "runs_root": str(base / "runs"),
            }
        path = (
            self.work_dir
            / "configs"
            / f"{self.tool}-{self.profile}-r{self.repetition}-{label}.yaml"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        return path

    def timed_run(
        self, label: str, faults: dict[str, dict[str, Any]] | None = None
    ) -> tuple[RunRecord, float, datetime, Path]:
        config = self.config_for(label)
        triggered = datetime.now(UTC)
        started = time.perf_counter()
        record = self.adapter.run_pipeline(config, faults=faults)
        return record, time.perf_counter() - started, triggered, config

    def clean_run_seconds(self) -> float:
        """The clean pipeline's end to end in this session (from the latency scenario when
        it ran, else one clean run now)."""
        if self.clean_end_to_end_s is None:
            record, seconds, _, _ = self.timed_run("clean")
            if record.status != "success":
                raise ScenarioFailed(f"the clean reference run ended {record.status}")
            self.clean_end_to_end_s = seconds
        return self.clean_end_to_end_s

    def timeline(
        self,
        triggered: datetime,
        records: list[tuple[str, RunRecord]],
        markers: list[tuple[str, datetime]] = (),  # type: ignore[assignment]
    ) -> None:
        events = []
        for run_label, run in records:
            for s in run.steps:
                events.append(
                    {
                        "run": run_label,
                        "step": s.key,  # train[forest] for a branch
                        "attempt": s.attempt,
                        "outcome": s.outcome,
                        "start_s": (s.started_at - triggered).total_seconds(),
                        "end_s": (s.ended_at - triggered).total_seconds() if s.ended_at else None,
                    }
                )
        self.collected.timelines.append(
            {
                "scenario": self.scenario,
                "tool": self.tool,
                "profile": self.profile,
                "repetition": self.repetition,
                "execution_model": self.execution_model,
                "events": events,
                "markers": [
                    {"label": label, "at_s": (at - triggered).total_seconds()}
                    for label, at in markers
                ],
            }
        )


# --- scenarios ------------------------------------------------------------------------------
def scenario_setup_static(s: Session) -> None:
    """Profile-independent setup figures, measured once per repetition."""
    tool = s.tool
    measurements: list[tuple[str, Callable[[], None]]] = []

    def install() -> None:
        seconds, size = setup_cost.install_environment(tool, s.work_dir / "envs")
        s.record("setup.install_s", seconds)
        s.record("setup.env_size_mb", size)

    def authoring() -> None:
        lines, files = setup_cost.authoring_lines(tool)
        s.record("setup.authoring_lines", lines)
        s.collected.tools[tool]["pipeline_files"] = files

    if s.plan.measure_install:
        measurements.append(("setup.install_s", install))
    else:
        s.outcome("skipped", "install time is not measured in quick mode", "setup.install_s")
    measurements += [
        (
            "setup.venv_size_mb",
            lambda: s.record("setup.venv_size_mb", setup_cost.venv_size_mb(tool)),
        ),
        ("setup.import_s", lambda: s.record("setup.import_s", setup_cost.import_seconds(tool))),
    ]
    if s.repetition == 0:  # static counts: one measurement is the measurement
        measurements += [
            ("setup.authoring_lines", authoring),
            ("setup.cluster_pods", lambda: _cluster_footprint(s)),
        ]
    for figure_key, measure in measurements:
        try:
            measure()
        except setup_cost.Unavailable as err:
            s.unavailable(figure_key, str(err))
        except NotApplicable as err:
            s.outcome("not_applicable", str(err), figure_key)


def _cluster_footprint(s: Session) -> None:
    if s.tool == "local":
        raise NotApplicable("the plain-Python baseline deploys nothing to a cluster")
    systems = setup_cost.cluster_footprint()
    system = systems.get(s.tool)
    if system is None:
        raise setup_cost.Unavailable(f"infra/footprint.py declares no system {s.tool!r}")
    totals = system.get("totals", {})
    for key, total in (
        ("setup.cluster_pods", "pods"),
        ("setup.cluster_cpu_request_m", "cpu_request_millis"),
        ("setup.cluster_memory_request_mib", "memory_request_mib"),
    ):
        if totals.get(total) is None:
            s.unavailable(key, system.get("note") or "not declared by the infra code")
        else:
            s.record(key, totals[total])
    s.collected.tools[s.tool]["cluster_footprint"] = system


def scenario_services(s: Session, info: Any) -> None:
    """Cold start and idle footprint of the services start_services() started."""
    if info is None:
        reason = f"{s.tool} starts no services at target {s.plan.target}"
        s.outcome("not_applicable", reason, "setup.cold_start_s")
        s.outcome("not_applicable", reason, "setup.idle_pss_mb")
        s.outcome("not_applicable", reason, "setup.idle_processes")
        return
    cold = info.cold_start_s if info.cold_start_s is not None else None
    if cold is None:
        s.unavailable("setup.cold_start_s", "the adapter did not time its start")
    else:
        s.record("setup.cold_start_s", cold)
    pids = list(info.pids or []) or s.adapter.service_pids()
    if not pids:
        s.outcome("not_applicable", "no local service processes", "setup.idle_pss_mb")
        return
    time.sleep(s.plan.settle_s)
    try:
        pss, count = setup_cost.process_tree_footprint(pids)
    except setup_cost.Unavailable as err:
        s.unavailable("setup.idle_pss_mb", str(err))
        return
    s.record("setup.idle_pss_mb", pss)
    s.record("setup.idle_processes", count)


def _record_phases(s: Session, prefix: str, timings: list, upstream: dict, **params: Any) -> None:
    phases = task_phases(timings, upstream)
    names = ["assignment", "transition"] + (["execution"] if prefix == "latency" else [])
    for name in names:
        values = getattr(phases, name)
        key = f"{prefix}.{name}_s"
        if values:
            s.record(key, phases.median(values), **params)
        elif name == "transition" and not any(upstream.values()):
            continue  # a graph without edges (chain of 1) has no transitions
        elif s.repetition == 0:
            why = (
                "no task timings from the adapter" if not timings else "timings lack the timestamps"
            )
            if timings and phases.unmatched_tasks and len(phases.unmatched_tasks) == len(timings):
                why = f"task names {phases.unmatched_tasks[:3]} do not match the graph"
            if name == "assignment" and timings and all(t.queued_at is None for t in timings):
                why = "the tool reports no queued time (no queue between ready and running)"
            s.unavailable(key, why + (f" ({params})" if params else ""))


def warm_up(s: Session) -> None:
    """The first pipeline run after the services start: timed, reported on its own, and
    kept out of every other figure (it pays one-off discovery and warm-up)."""
    record, seconds, _, _ = s.timed_run("first-run")
    if record.status != "success":
        raise ScenarioFailed(f"the first pipeline run {record.run_id} ended {record.status}")
    s.record("latency.first_run_s", seconds)


def scenario_latency(s: Session) -> None:
    record, seconds, _, _ = s.timed_run("latency")
    if record.status != "success":
        raise ScenarioFailed(f"the clean pipeline run {record.run_id} ended {record.status}")
    s.clean_end_to_end_s = seconds
    s.record("latency.end_to_end_s", seconds)
    s.record("latency.step_execution_s", record.step_seconds)
    s.record("latency.overhead_s", seconds - record.step_seconds)
    for step in record.steps:
        if step.outcome == "success" and step.peak_rss_mb:
            s.record("latency.step_peak_rss_mb", step.peak_rss_mb, step=step.key)
    _record_phases(s, "latency", s.adapter.task_timings(record.run_id), PIPELINE_UPSTREAM)
    s.collected.tools[s.tool].setdefault("pipeline_results", []).append(
        {
            "profile": s.profile,
            "repetition": s.repetition,
            "run_id": record.run_id,
            "selected_candidate": record.selected_candidate,
            "metrics": record.metrics,
            "prediction_hash": record.prediction_hash,
        }
    )


def scenario_scaling(s: Session) -> None:
    failures = []
    for shape, sizes in (("chain", s.plan.chain_sizes), ("fanout", s.plan.fanout_sizes)):
        if not sizes:
            if s.repetition == 0:
                s.outcome(
                    "skipped", f"no {shape} sizes in this plan (quick mode)", "scaling.end_to_end_s"
                )
            continue
        for size in sizes:
            started = time.perf_counter()
            result = s.adapter.run_workload(shape, size)  # type: ignore[arg-type]
            seconds = time.perf_counter() - started
            if not is_success(result.status):
                failures.append(f"{shape} {size}: {result.status}")
                continue
            s.record("scaling.end_to_end_s", seconds, shape=shape, size=size)
            _record_phases(
                s, "scaling", result.tasks, workload_graph(shape, size), shape=shape, size=size
            )
    if failures:
        raise ScenarioFailed("workload runs did not succeed: " + "; ".join(failures))


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
        days=(s.plan.profiles.index(s.profile) * 100 + s.repetition) * s.plan.backfill_dates
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
        raise NotImplementedError(f"the {s.tool} adapter has no restart_services()")
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
    while worker.is_alive() and not list(runs_root.glob(f"*/steps/{FAULT_STEP}.attempt-*.json")):
        if time.monotonic() > deadline:
            raise ScenarioFailed(f"the run did not reach {FAULT_STEP} in {s.plan.run_timeout_s}s")
        time.sleep(0.2)
    if not worker.is_alive():
        raise ScenarioFailed(f"the run ended before {FAULT_STEP} started: {outcome}")
    restart_begin = datetime.now(UTC)
    try:
        s.adapter.restart_services()
    except NotImplementedError:
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
    if isinstance(error, Exception) and not isinstance(error, NotImplementedError):
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
    if s.profile != s.plan.profiles[0]:
        raise NotApplicable(f"measured once per repetition, at profile {s.plan.profiles[0]}")
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


SCENARIO_FUNCTIONS: dict[str, Callable[[Session], None]] = {
    "latency": scenario_latency,
    "scaling": scenario_scaling,
    "transient": scenario_transient,
    "resume": scenario_resume,
    "kill": scenario_kill,
    "backfill": scenario_backfill,
    "restart": scenario_restart,
    "adhoc": scenario_adhoc,
}


# --- the loop -------------------------------------------------------------------------------
@contextmanager
def guarded(s: Session, scenario: str) -> Iterator[None]:
    """Run one scenario; turn what happened into an outcome instead of an abort."""
    s.scenario = scenario
    started = time.perf_counter()

    def took() -> float:
        return time.perf_counter() - started

    try:
        yield
    except NotImplementedError as err:
        s.outcome(
            "not_supported", str(err) or f"{s.tool} does not implement {scenario}", None, took()
        )
    except NotApplicable as err:
        s.outcome("not_applicable", str(err), None, took())
    except Exception as err:
        s.outcome("error", f"{type(err).__name__}: {err}", None, took())
        s.collected.log.append(
            f"{s.tool}/{s.profile}/r{s.repetition}/{scenario}:\n{traceback.format_exc()}"
        )
    else:
        s.outcome("ok", "", None, took())


Progress = Callable[[str, float], None]  # (description, units of work done)


def session_units(plan: Plan) -> int:
    """Units of progress per session: one per scenario (scaling: one per workload run)."""
    units = 0
    for scenario in plan.scenarios:
        units += len(plan.chain_sizes) + len(plan.fanout_sizes) if scenario == "scaling" else 1
    return units + 1  # + services start/stop


def run_plan(plan: Plan, work_dir: Path, progress: Progress | None = None) -> Collected:
    advance = progress or (lambda description, units: None)
    collected = Collected()
    for repetition, profile, tool in session_order(plan):
        run_session(plan, tool, profile, repetition, work_dir, collected, advance)
    return collected


def _tool_entry(collected: Collected, tool: str, adapter: ToolAdapter | None, plan: Plan) -> dict:
    entry = collected.tools.setdefault(tool, {"profiles": {}})
    if adapter is not None:
        entry["execution_model"] = getattr(adapter, "execution_model", "unknown")
        entry["packages"] = list(getattr(adapter, "packages", ()))
        entry["url"] = plan.urls.get(tool)
    return entry


def run_session(
    plan: Plan,
    tool: str,
    profile: str,
    repetition: int,
    work_dir: Path,
    collected: Collected,
    advance: Progress,
) -> None:
    label = f"{tool} ({profile}, repetition {repetition + 1}/{plan.repeat})"
    try:
        adapter = get_adapter(tool, target=plan.target, url=plan.urls.get(tool), profile=profile)
    except Exception as err:  # the adapter is missing or cannot be built: say so per scenario
        _tool_entry(collected, tool, None, plan)
        reason = f"adapter unavailable: {type(err).__name__}: {err}"
        for scenario in plan.scenarios:
            collected.outcomes.append(
                {
                    "scenario": scenario,
                    "figure": None,
                    "tool": tool,
                    "profile": profile,
                    "repetition": repetition,
                    "status": "error",
                    "reason": reason,
                }
            )
        advance(f"{label}: adapter unavailable", session_units(plan))
        return
    entry = _tool_entry(collected, tool, adapter, plan)
    for skipped in plan.skipped_scenarios:
        collected.outcomes.append(
            {
                "scenario": skipped,
                "figure": None,
                "tool": tool,
                "profile": profile,
                "repetition": repetition,
                "status": "skipped",
                "reason": "left out of quick mode; run `orchbench bench` (or --scenarios) for it",
            }
        )
    entry["profiles"][profile] = getattr(adapter, "profile_description", None) or profile
    session = Session(
        plan=plan,
        tool=tool,
        profile=profile,
        repetition=repetition,
        adapter=adapter,
        execution_model=entry["execution_model"],
        collected=collected,
        work_dir=work_dir,
    )
    if "setup" in plan.scenarios and profile == plan.profiles[0]:
        advance(f"{label}: setup cost", 0)
        with guarded(session, "setup"):
            scenario_setup_static(session)
    advance(f"{label}: starting services", 0)
    info = None
    try:
        info = adapter.start_services()
    except Exception as err:
        reason = f"start_services failed: {type(err).__name__}: {err}"
        collected.log.append(f"{label} start_services:\n{traceback.format_exc()}")
        for scenario in plan.scenarios:
            session.scenario = scenario
            session.outcome("error", reason)
        _stop(adapter, collected, label)
        advance(f"{label}: services failed", session_units(plan))
        return
    try:
        if info is not None and getattr(info, "details", None):
            entry.setdefault("service_details", {})[profile] = _jsonable(info.details)
        if "setup" in plan.scenarios:
            with guarded(session, "setup"):
                scenario_services(session, info)
        advance(f"{label}: services up", 1)
        if plan.demo_config is not None and repetition == 0 and profile == plan.profiles[0]:
            # orchbench demo: its showcase run is this session's first run (the warm-up),
            # so the first-run figure is not recorded here; see benchmarks.harness.demo.
            advance(f"{label}: the demo pipeline ({plan.demo_config.name}), first run", 0)
            with guarded(session, "demo"):
                demo_run(session)
        elif set(plan.scenarios) & PIPELINE_SCENARIOS:
            advance(f"{label}: first run", 0)
            with guarded(session, "warmup"):
                warm_up(session)
        for scenario in plan.scenarios:
            if scenario == "setup":
                continue
            advance(f"{label}: {scenario}", 0)
            with guarded(session, scenario):
                SCENARIO_FUNCTIONS[scenario](session)
            units = len(plan.chain_sizes) + len(plan.fanout_sizes) if scenario == "scaling" else 1
            advance(f"{label}: {scenario} done", units)
    finally:
        _stop(adapter, collected, label)


def _stop(adapter: ToolAdapter, collected: Collected, label: str) -> None:
    try:
        adapter.stop_services()
    except Exception:
        collected.log.append(f"{label} stop_services:\n{traceback.format_exc()}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


__all__ = ["SCENARIOS", "Collected", "run_plan"]
