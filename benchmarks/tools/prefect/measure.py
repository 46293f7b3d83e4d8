"""Measure the local Prefect services and pipeline latency, per profile.

    python -m benchmarks.tools.prefect.measure [--repeat 3] [--profiles defaults tuned]

For each profile, on a fresh temporary Prefect home, ORCHBENCH_HOME and free port:

- cold start: ``prefect server start`` process start -> ``/api/health`` answers 200;
- idle footprint: PSS (``psutil.memory_full_info().pss``) summed over the server, the
  worker and all their descendants, and their process count, after ``--idle-s`` seconds;
- per pipeline run, in-process (``python -m pipelines.prefect.run`` subprocess against the
  server) and through the deployment (flow run created via the API, picked up by the worker):
  ``trigger_to_terminal_s`` (trigger -> flow run terminal), ``overhead_s`` (that minus the
  sum of step execution), ``trigger_to_flow_start_s`` (trigger -> Prefect's flow run
  start_time: process start and imports, plus the worker's poll for deployments) and
  ``flow_run_s`` (Prefect's flow run start_time -> end_time); for deployment runs also
  ``scheduled_to_pending_s`` (the worker's pick-up: its poll interval) and
  ``pending_to_running_s`` (the flow-run subprocess starting).

Prints one JSON document: medians, min/max, and every sample.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from benchmarks.environments import REPO_ROOT
from benchmarks.tools.prefect.adapter import PrefectAdapter
from benchmarks.tools.prefect.client import parse_time
from benchmarks.tools.prefect.services import free_port


def footprint(pids: list[int]) -> dict[str, Any]:
    pss = 0
    counted = 0
    for pid in pids:
        try:
            pss += psutil.Process(pid).memory_full_info().pss
            counted += 1
        except psutil.Error:
            continue
    return {"pss_mb": round(pss / 2**20, 1), "processes": counted}


def state_phases(states: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds spent in Scheduled (waiting for the worker) and Pending (process start)."""
    first = {}
    for state in states:
        first.setdefault(state["type"], parse_time(state["timestamp"]))
    phases = {}
    if "SCHEDULED" in first and "PENDING" in first:
        phases["scheduled_to_pending_s"] = (first["PENDING"] - first["SCHEDULED"]).total_seconds()
    if "PENDING" in first and "RUNNING" in first:
        phases["pending_to_running_s"] = (first["RUNNING"] - first["PENDING"]).total_seconds()
    return phases


def summary(samples: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(samples), 3),
        "min": round(min(samples), 3),
        "max": round(max(samples), 3),
        "n": len(samples),
        "samples": [round(s, 3) for s in samples],
    }


def measure_profile(profile: str, repeat: int, idle_s: float, config: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"orchbench-prefect-{profile}-") as tmp:
        os.environ["ORCHBENCH_HOME"] = tmp
        results: dict[str, Any] = {"profile": profile}
        adapters = {
            mode: PrefectAdapter(
                profile=profile, home=Path(tmp) / "prefect", mode=mode, port=free_port()
            )
            for mode in ("in-process", "deployment")
        }
        first = adapters["in-process"]
        adapters["deployment"].port = first.port
        try:
            info = first.start_services()
            results["cold_start_s"] = info.cold_start_s
            results["worker_ready_s"] = info.details.get("worker_ready_s")
            time.sleep(idle_s)
            results["idle"] = footprint(first.service_pids())
            for mode, adapter in adapters.items():
                samples: dict[str, list[float]] = {
                    "trigger_to_terminal_s": [],
                    "overhead_s": [],
                    "trigger_to_flow_start_s": [],
                    "flow_run_s": [],
                }
                for i in range(repeat):
                    record = adapter.run_pipeline(config, run_id=f"measure-{profile}-{mode}-{i}")
                    if record.status != "success":
                        raise RuntimeError(f"{mode} run {record.run_id} failed")
                    details = record.tool_details
                    flow_start = parse_time(details["flow_run_start"])
                    flow_end = parse_time(details["flow_run_end"])
                    total = details["trigger_to_terminal_s"]
                    samples["trigger_to_terminal_s"].append(total)
                    samples["overhead_s"].append(total - record.step_seconds)
                    samples["trigger_to_flow_start_s"].append(
                        (flow_start - record.started_at).total_seconds()
                    )
                    samples["flow_run_s"].append((flow_end - flow_start).total_seconds())
                    for name, seconds in state_phases(details["flow_run_states"]).items():
                        samples.setdefault(name, []).append(seconds)
                for name, values in samples.items():
                    results[f"{mode}.{name}"] = summary(values)
        finally:
            first.stop_services()
        return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tools.prefect.measure")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--profiles", nargs="+", default=["defaults", "tuned"])
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "configs" / "default.yaml")
    args = parser.parse_args()
    report = {
        "machine": {
            "platform": platform.platform(),
            "cpus": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_avg_at_start": os.getloadavg(),
        },
        "config": str(args.config),
        "profiles": [
            measure_profile(p, args.repeat, args.idle_s, args.config) for p in args.profiles
        ],
        "load_avg_at_end": os.getloadavg(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
