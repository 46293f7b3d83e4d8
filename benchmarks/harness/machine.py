"""What a benchmark session ran on: the machine (CPU, memory, boot), how fast its CPU was
then, and the code revision. A long benchmark may be resumed after a reboot or on another
machine of the same kind; these let the report show which sessions ran where, and
whether the machines ran at the same speed."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import time
import timeit
from pathlib import Path
from typing import Any

import psutil

from benchmarks.environments import REPO_ROOT

# A fixed pure-Python workload (hashing, dict and sort): the orchestrators' own overheads
# (imports, ORM, scheduling loops) are interpreter-bound on one core, like this.
_PROBE_ITEMS = 100_000
_PROBE_REPEATS = 5


def _probe_workload() -> None:
    digests = {i % 1000: hashlib.sha256(str(i).encode()).hexdigest() for i in range(_PROBE_ITEMS)}
    sorted(digests.values())


def cpu_probe_s() -> float:
    """Seconds the fixed workload takes, the fastest of 5 tries (the minimum is the least
    disturbed by other work, as ``timeit`` advises). The same code on a slower or busier
    machine takes longer; the report prints it per session."""
    return round(min(timeit.repeat(_probe_workload, number=1, repeat=_PROBE_REPEATS)), 4)


# Before a session: the CPU counts as quiet when it was under this share busy (of all
# cores) over one window.
QUIET_BUSY_SHARE = 0.25
QUIET_WINDOW_S = 5.0


def wait_until_quiet(max_wait_s: float) -> float:
    """Wait until the CPU has been quiet for one window, or ``max_wait_s``; the seconds
    waited. Sessions run back to back, and the last one's teardown (services exiting,
    databases flushing) can outlast it: a session started on that tail measures it. The
    CPU's own share, not the load average, which trails by a minute."""
    started = time.perf_counter()
    while time.perf_counter() - started < max_wait_s:
        if psutil.cpu_percent(interval=QUIET_WINDOW_S) / 100 < QUIET_BUSY_SHARE:
            break
    return round(time.perf_counter() - started, 1)


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def boot_id() -> str:
    """Which boot of which machine: a benchmark resumed after a restart, or on another
    machine of the same kind, runs its later sessions under a different boot id."""
    path = Path("/proc/sys/kernel/random/boot_id")
    try:
        return path.read_text(encoding="utf-8").strip()[:8] or "unknown"
    except OSError:
        return "unknown"


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count() or 1,
        "cpu_model": cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 2),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "source_revision": source_revision(),
        "boot_id": boot_id(),
    }


def source_revision() -> str:
    """The commit the benchmark's code was at (``+dirty`` with uncommitted changes), so a
    report can be traced to the code that measured it; "unknown" outside a git checkout."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=30
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (commit + ("+dirty" if dirty else "")) if commit else "unknown"
