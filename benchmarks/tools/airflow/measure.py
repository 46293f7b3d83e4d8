"""Quick figures for one Airflow profile, in a private AIRFLOW_HOME and ORCHBENCH_HOME:

- cold start: ``airflow db migrate`` start -> health endpoint reports all healthy, fresh DB;
- idle footprint: PSS summed over the 3 components and all their children, and the
  process count, after ``--idle-s`` seconds with nothing to do;
- trigger-to-success of the ML pipeline through the scheduler (REST trigger -> run end
  as the API reports it), ``--runs`` times.

    python -m benchmarks.tools.airflow.measure --profile tuned --runs 3

The benchmark harness measures these properly (repeats, spread, all tools in one run);
this is the per-tool smoke version whose numbers docs/airflow.md quotes.
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

import psutil

from benchmarks.environments import REPO_ROOT
from benchmarks.tools.airflow.adapter import AirflowAdapter
from benchmarks.tools.airflow.services import ServiceSettings, free_port, pss_bytes


def measure(profile: str, runs: int, idle_s: float) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"orchbench-airflow-measure-{profile}-"))
    os.environ["ORCHBENCH_HOME"] = str(root / "orchbench")
    settings = ServiceSettings(home=root / "airflow_home", port=free_port(), profile=profile)
    adapter = AirflowAdapter(profile=profile, settings=settings)  # type: ignore[arg-type]
    result: dict = {
        "profile": profile,
        "machine": {
            "cpus": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
            "load_avg_at_start": os.getloadavg(),
        },
    }
    try:
        info = adapter.start_services()
        assert info is not None
        result["cold_start_s"] = round(info.cold_start_s or 0, 2)
        result["migrate_s"] = info.details["migrate_s"]
        time.sleep(idle_s)
        pids = adapter.service_pids()
        result["idle_processes"] = len(pids)
        result["idle_pss_mb"] = round(pss_bytes(pids) / 2**20, 1)
        durations = []
        for i in range(runs):
            record = adapter.run_pipeline(REPO_ROOT / "configs" / "default.yaml")
            if record.status != "success":
                raise RuntimeError(f"run {i} failed: {record.tool_details}")
            durations.append(record.tool_details["trigger_to_end_s"])
        result["trigger_to_success_s"] = [round(d, 2) for d in durations]
        if durations:
            result["trigger_to_success_median_s"] = round(statistics.median(durations), 2)
        result["load_avg_at_end"] = os.getloadavg()
    finally:
        adapter.stop_services()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("defaults", "tuned"), default="defaults")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle-s", type=float, default=20.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.profile, args.runs, args.idle_s), indent=2))


if __name__ == "__main__":
    main()
