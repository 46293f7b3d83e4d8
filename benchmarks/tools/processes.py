"""Process bookkeeping shared by the tools' service managers."""

from __future__ import annotations

import psutil


def live_process(pid: int, create_time: float) -> psutil.Process | None:
    """The process ``pid`` if it still runs and is the one started at ``create_time``.

    Comparing the start time guards against a pid reused by an unrelated process after
    ours exited; a zombie counts as gone.
    """
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > 1.0:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.NoSuchProcess:
        return None
