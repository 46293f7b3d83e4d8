"""Run a benchmark plan: every tool through its adapter, interleaved, every scenario.

Order: per repetition, the profiles and within each the tools in an order shuffled from
``plan.order_seed`` (``plan.session_order``, recorded in results.json), so slow drifts of
a shared machine spread over all tools and no tool always runs first. Each (tool,
profile, repetition) is a session (benchmarks.harness.session): the tool's services are
started, its scenarios run, its services stopped, before the next tool starts, so no
tool is measured while another one's servers are running. The scenarios live in
``scenarios_setup``, ``scenarios_latency`` and ``scenarios_recovery``.

A scenario a tool cannot do is recorded, never dropped (see ``session.guarded``).
"""

from __future__ import annotations

import os
import re
import shutil
import time
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.harness.demo import demo_run
from benchmarks.harness.figures import SCENARIOS
from benchmarks.harness.machine import (
    boot_id,
    cpu_model,
    cpu_probe_s,
    source_revision,
    wait_until_quiet,
)
from benchmarks.harness.plan import Plan, base_tool, database_of, session_order
from benchmarks.harness.scenarios_disruption import (
    scenario_kill_worker,
    scenario_restart,
    scenario_restart_scheduler,
)
from benchmarks.harness.scenarios_latency import scenario_latency, scenario_scaling, warm_up
from benchmarks.harness.scenarios_recovery import (
    scenario_adhoc,
    scenario_backfill,
    scenario_kill,
    scenario_resume,
    scenario_transient,
)
from benchmarks.harness.scenarios_setup import scenario_services, scenario_setup_static
from benchmarks.harness.scenarios_throughput import scenario_throughput
from benchmarks.harness.session import (
    PIPELINE_SCENARIOS,
    Collected,
    Session,
    guarded,
)
from benchmarks.tools import get_adapter
from benchmarks.tools.base import ToolAdapter
from benchmarks.tools.profiles import report_entry

Progress = Callable[[str, float], None]  # (description, units of work done)

SCENARIO_FUNCTIONS: dict[str, Callable[[Session], None]] = {
    "latency": scenario_latency,
    "scaling": scenario_scaling,
    "transient": scenario_transient,
    "resume": scenario_resume,
    "kill": scenario_kill,
    "kill_worker": scenario_kill_worker,
    "backfill": scenario_backfill,
    "restart": scenario_restart,
    "restart_scheduler": scenario_restart_scheduler,
    "adhoc": scenario_adhoc,
    "throughput": scenario_throughput,
}


def session_units(plan: Plan) -> int:
    """Units of progress per session: one per scenario (scaling: one per workload run)."""
    units = 0
    for scenario in plan.scenarios:
        units += len(plan.chain_sizes) + len(plan.fanout_sizes) if scenario == "scaling" else 1
    return units + 1  # + services start/stop


def run_plan(
    plan: Plan,
    work_dir: Path,
    progress: Progress | None = None,
    *,
    collected: Collected | None = None,
    done: Iterable[tuple[int, str, str]] = (),
    on_session_done: Callable[[Collected, tuple[int, str, str]], None] | None = None,
) -> Collected:
    """Run every session of the plan not in ``done`` (a resumed benchmark's finished
    ones), adding to ``collected``; ``on_session_done`` is called after each (the
    checkpoint). Each session's start, load average, duration, code revision, machine (boot
    id, CPU model), CPU speed probe and the wait for a quiet CPU before it are kept: the
    conditions its figures were measured under."""
    advance = progress or (lambda description, units: None)
    collected = collected if collected is not None else Collected()
    finished = {tuple(key) for key in done}
    # Per invocation: a resumed benchmark may run newer code, after a reboot or on another
    # machine of the same kind.
    revision, boot, model = source_revision(), boot_id(), cpu_model()
    for key in session_order(plan):
        if key in finished:
            continue
        repetition, profile, tool = key
        waited = wait_until_quiet(plan.quiet_wait_s) if plan.quiet_wait_s > 0 else 0.0
        load = os.getloadavg()[0]
        probe = cpu_probe_s()  # before the session's clock: how fast the CPU is right now
        started_at, started = datetime.now(UTC), time.perf_counter()
        run_session(plan, tool, profile, repetition, work_dir, collected, advance)
        collected.sessions.append(
            {
                "repetition": repetition,
                "profile": profile,
                "tool": tool,
                "started_at": started_at.isoformat(),
                "load_average_1m_at_start": round(load, 2),
                "duration_s": round(time.perf_counter() - started, 3),
                "source_revision": revision,
                "boot_id": boot,
                "cpu_model": model,
                "cpu_probe_s": probe,
                "quiet_wait_s": waited,
            }
        )
        if on_session_done is not None:
            on_session_done(collected, key)
    return collected


# The line a Python traceback ends with: ``package.module.SomeError: message``.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b(: .*)?$")


def crash_summary(note: str) -> str:
    """A crash-restart note in one line for the report: what exited, and the last
    exception its log's tail shows, instead of the path of a log on the benchmark machine
    (the note's first line ends "Last lines of <log>:", its tail follows)."""
    head, _, log_tail = note.partition("\n")
    head = head.split(" Last lines of ")[0].strip()
    errors = [line.strip() for line in log_tail.splitlines() if _EXCEPTION_LINE.match(line.strip())]
    return head + (f" Its log's last error: {errors[-1]}" if errors else "")


def _tool_entry(collected: Collected, tool: str, adapter: ToolAdapter | None, plan: Plan) -> dict:
    entry = collected.tools.setdefault(tool, {"profiles": {}})
    if "knobs" not in entry:
        # The settings of each profile it runs, their reasons and documentation, and its
        # task concurrency: the report prints them (benchmarks/tools/profiles.py).
        entry.update(report_entry(base_tool(tool), plan.profiles_for(tool)))
    if adapter is not None:
        entry["execution_model"] = getattr(adapter, "execution_model", "unknown")
        entry["packages"] = list(getattr(adapter, "packages", ()))
        entry["url"] = plan.urls.get(base_tool(tool))
    return entry


def _record_execution_path(
    entry: dict, tool: str, adapter: ToolAdapter | None, profile: str
) -> None:
    """Per profile, the path through the tool its figures were measured on and the tool's
    metadata database (``database`` may be absent on an adapter: read defensively)."""
    paths = entry.setdefault("execution_paths", {})
    if adapter is None:
        paths.setdefault(
            profile, {"execution_path": "unknown (adapter unavailable)", "database": "unknown"}
        )
        return
    conditions = {
        "execution_path": getattr(adapter, "execution_path", None) or "unknown",
        "database": getattr(adapter, "database", None) or "none",
    }
    recorded = paths.get(profile)
    if recorded and recorded["database"] != "unknown" and recorded != conditions:
        # Every session of a tool and profile must measure the same path, or its figures
        # would mix two paths in one median.
        raise ValueError(f"{tool}/{profile}: path changed from {recorded} to {conditions}")
    paths[profile] = conditions


def run_session(
    plan: Plan,
    tool: str,
    profile: str,
    repetition: int,
    work_dir: Path,
    collected: Collected,
    advance: Progress,
) -> None:
    # ``tool`` is a tool label: the tool itself, or ``<tool>+postgres`` for its session on
    # PostgreSQL (plan.tool_labels); results are keyed by the label.
    tool_name, database = base_tool(tool), database_of(tool)
    label = f"{tool} ({profile}, repetition {repetition + 1}/{plan.repeat})"
    options: dict[str, Any] = {}
    if plan.target == "local" and database:
        # A fresh home per session: its own database, logs and state, so each repetition
        # starts from the same (empty) metadata, recorded as plan.database_state.
        home = work_dir / "homes" / f"{tool}-{profile}-r{repetition}"
        if home.exists():  # left by this session's interrupted try (--resume): start afresh
            shutil.rmtree(home)
        options = {"database": database, "home": home}
    try:
        adapter = get_adapter(
            tool_name, target=plan.target, url=plan.urls.get(tool_name), profile=profile, **options
        )
    except Exception as err:  # the adapter is missing or cannot be built: say so per scenario
        _record_execution_path(_tool_entry(collected, tool, None, plan), tool, None, profile)
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
    _record_execution_path(entry, tool, adapter, profile)
    # How often the adapter polls the tool for a run's end (outside every timer).
    entry["poll_interval_s"] = getattr(adapter, "poll_interval_s", None)
    for skipped in plan.skipped_scenarios:
        collected.outcomes.append(
            {
                "scenario": skipped,
                "figure": None,
                "tool": tool,
                "profile": profile,
                "repetition": repetition,
                "status": "skipped",
                "reason": plan.skip_reasons.get(
                    skipped,
                    "left out of quick mode; run `orchbench bench` (or --scenarios) for it",
                ),
            }
        )
    entry["profiles"][profile] = entry["profile_descriptions"].get(profile, profile)
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
    if "setup" in plan.scenarios and profile == plan.profiles_for(tool)[0]:
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
        first_profile = profile == plan.profiles_for(tool)[0]
        if plan.demo_config is not None and repetition == 0 and first_profile:
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
            restarts = len(getattr(adapter, "crash_restarts", ()))
            with guarded(session, scenario):
                SCENARIO_FUNCTIONS[scenario](session)
            # A component that crashed and was started again is part of what happened.
            for note in getattr(adapter, "crash_restarts", [])[restarts:]:
                session.outcome("ok", f"restarted after a crash: {crash_summary(note)}")
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
