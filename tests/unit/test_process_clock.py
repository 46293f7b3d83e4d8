"""The "process up" moment: a process never seems to start before its parent spawned it
(psutil's create time did, by up to a second on Linux: psutil issue #877)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from shared_ml.workloads import noop

REPO_ROOT = Path(__file__).resolve().parents[2]
# /proc gives a process's start in clock ticks: the moment is floored to one of them.
TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def test_a_process_starts_after_its_spawn_and_before_its_first_line() -> None:
    child = (
        "import json, time; first = time.time()\n"
        "from shared_ml.process_clock import process_started_at\n"
        "print(json.dumps([first, process_started_at()]))"
    )
    for _ in range(3):
        spawned = time.time()
        done = subprocess.run(
            [sys.executable, "-c", child], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
        first_line, started = json.loads(done.stdout)
        assert spawned - TICK_S <= started <= first_line, (spawned, started, first_line)


def test_a_noop_task_records_its_process_start_after_its_spawn(tmp_path: Path) -> None:
    child = f"from shared_ml.workloads import noop\nnoop('task_000', 'run', {str(tmp_path)!r})"
    spawned = time.time()
    subprocess.run([sys.executable, "-c", child], cwd=REPO_ROOT, check=True)
    times = json.loads((tmp_path / "run" / "tasks" / "task_000.json").read_text())
    assert spawned - TICK_S <= times["process_started"] <= times["start"], (spawned, times)
    here = noop("task_001", "run")  # this process started before the test did
    assert here["process_started"] <= spawned
