"""Setup scenarios: install, import, cold start, idle footprint, authoring, cluster."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from benchmarks.harness import setup_cost
from benchmarks.harness.plan import base_tool
from benchmarks.harness.session import (
    NotApplicable,
    Session,
)


def scenario_setup_static(s: Session) -> None:
    """Profile-independent setup figures, measured once per repetition."""
    tool = base_tool(s.tool)  # airflow+postgres: airflow's environment and sources
    measurements: list[tuple[str, Callable[[], None]]] = []

    def install() -> None:
        seconds, size = setup_cost.install_environment(tool, s.work_dir / "envs")
        s.record("setup.install_s", seconds)
        s.record("setup.env_size_mb", size)

    def authoring() -> None:
        lines, files = setup_cost.authoring_lines(tool)
        s.record("setup.authoring_lines", lines)
        s.collected.tools[s.tool]["pipeline_files"] = files

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
    system = systems.get(base_tool(s.tool))
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
