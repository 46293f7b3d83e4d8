"""The Kubeflow figures quoted in docs/kubeflow.md, measured on this machine.

    python -m benchmarks.tools.kubeflow.figures [--repeat 3] [--chain 5] [--output FILE]

Figures (each repeated; median and min-max reported):

- ``pipeline_end_to_end_s``: the ML pipeline run locally by kfp.local, from the pipeline call
  to its terminal state (the run record's duration), and ``adapter_wall_s``: the adapter's
  whole ``run_pipeline`` from the core env (adds the launcher process's start and imports);
- ``step_execution_s``: the sum of the step execution times, from the step records;
- ``baseline_wall_s``: the plain-Python baseline's ``run_pipeline`` (one subprocess), for scale;
- ``per_task_wall_s``: a chain of N no-op components, end to end divided by N: what one
  task costs the local runner (subprocess start, imports, executor I/O);
- ``noop_execution_s``: the no-op's own execution (its recorded end minus start);
- ``imports_s``: a fresh interpreter importing KFP's executor, then the component runtime
  (shared_ml + kfp.dsl): most of the per-task cost;
- ``ir_bytes`` / ``ir_lines``: the committed IR.

Runs in an ORCHBENCH_HOME of its own (a temporary directory) unless one is set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from benchmarks.environments import REPO_ROOT, tool_bin, tool_env
from benchmarks.tools.kubeflow.adapter import KubeflowAdapter
from benchmarks.tools.local import LocalAdapter

IR_PATH = REPO_ROOT / "pipelines" / "kubeflow" / "orchbench_ml.yaml"
CONFIG = REPO_ROOT / "configs" / "default.yaml"


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 6),
        "min": round(min(values), 6),
        "max": round(max(values), 6),
        "n": len(values),
    }


def import_seconds(module: str) -> float:
    python = str(tool_bin("kubeflow", "python"))
    started = time.perf_counter()
    subprocess.run([python, "-c", f"import {module}"], env=tool_env(), check=True)
    return time.perf_counter() - started


def measure(repeat: int, chain: int) -> dict[str, Any]:
    adapter = KubeflowAdapter(webhook_url="")
    baseline = LocalAdapter()
    end_to_end, adapter_wall, step_sum, per_task, noop_exec, baseline_wall = [], [], [], [], [], []
    kfp_version = None
    for i in range(repeat):
        started = time.perf_counter()
        baseline.run_pipeline(CONFIG, run_id=f"figures-baseline-{i}-{time.time_ns()}")
        baseline_wall.append(time.perf_counter() - started)
        started = time.perf_counter()
        record = adapter.run_pipeline(CONFIG, run_id=f"figures-{i}-{time.time_ns()}")
        adapter_wall.append(time.perf_counter() - started)
        if record.status != "success":
            raise RuntimeError(f"figure run {record.run_id} failed: {record.tool_details}")
        end_to_end.append(record.duration_s or 0.0)
        step_sum.append(record.step_seconds)
        kfp_version = record.versions.get("kfp")
        workload = adapter.run_workload("chain", chain)
        if workload.status != "success":
            raise RuntimeError(f"chain workload failed: {workload.details}")
        per_task.append(workload.end_to_end_s / chain)
        noop_exec += [(t.ended_at - t.started_at).total_seconds() for t in workload.tasks]
    executor_import = [import_seconds("kfp.dsl.executor_main") for _ in range(repeat)]
    runtime_import = [import_seconds("pipelines.kubeflow.task_runtime") for _ in range(repeat)]
    text = IR_PATH.read_text(encoding="utf-8")
    return {
        "measured_at": datetime.now(UTC).isoformat(),
        "conditions": {
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "kfp": kfp_version,
            "runner": "kfp.local.SubprocessRunner(use_venv=False), caching on, fresh run ids",
            "config": str(CONFIG.relative_to(REPO_ROOT)),
            "chain_length": chain,
        },
        "pipeline_end_to_end_s": spread(end_to_end),
        "adapter_wall_s": spread(adapter_wall),
        "baseline_wall_s": spread(baseline_wall),
        "step_execution_s": spread(step_sum),
        "orchestration_overhead_s": spread(
            [e - s for e, s in zip(end_to_end, step_sum, strict=True)]
        ),
        "per_task_wall_s": spread(per_task),
        "noop_execution_s": spread(noop_exec),
        "imports_s": {
            "kfp.dsl.executor_main": spread(executor_import),
            "pipelines.kubeflow.task_runtime": spread(runtime_import),
        },
        "ir_bytes": len(text.encode()),
        "ir_lines": text.count("\n"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tools.kubeflow.figures")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chain", type=int, default=5)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    if "ORCHBENCH_HOME" not in os.environ:
        os.environ["ORCHBENCH_HOME"] = tempfile.mkdtemp(prefix="orchbench-kfp-figures-")
    figures = measure(args.repeat, args.chain)
    text = json.dumps(figures, indent=2)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
