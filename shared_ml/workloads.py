"""The scaling workloads: a chain of N no-op tasks, or a fan-out of width W.

Every tool builds the same graph from ``workload_graph`` and calls ``noop`` in each
task, so that the tool's own overhead is all that differs between them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Literal

from shared_ml.process_clock import process_started_at

Shape = Literal["chain", "fanout"]
# Where the no-op tasks write their times, under $ORCHBENCH_HOME (every tool's layout).
WORKLOAD_DIR = "var/workloads"


def workload_graph(shape: Shape, size: int) -> dict[str, list[str]]:
    """Task name -> upstream task names. A fan-out has a root, W leaves and a join."""
    if size < 1:
        raise ValueError(f"workload size must be >= 1, got {size}")
    if shape == "chain":
        names = [f"task_{i:03d}" for i in range(size)]
        return {n: ([names[i - 1]] if i else []) for i, n in enumerate(names)}
    if shape == "fanout":
        graph: dict[str, list[str]] = {"root": []}
        leaves = [f"leaf_{i:03d}" for i in range(size)]
        graph.update({leaf: ["root"] for leaf in leaves})
        graph["join"] = leaves
        return graph
    raise ValueError(f"unknown workload shape {shape!r}; expected chain or fanout")


def noop(task: str, run_id: str, runs_root: str | None = None) -> dict[str, float]:
    """Do nothing, but say when: ``{"start": t0, "end": t1}`` (epoch seconds), with the
    pid and the start of the process it ran in (``process_started``: "process up").

    When ``runs_root`` is given the times are also written under
    ``<runs_root>/<run_id>/tasks/<task>.json``, for tools whose API does not report them.
    """
    start = time.time()
    end = time.time()
    process_started = process_started_at()
    times = {"start": start, "end": end, "pid": os.getpid(), "process_started": process_started}
    if runs_root:
        folder = Path(runs_root) / run_id / "tasks"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{task}.json").write_text(json.dumps(times))
    return times
