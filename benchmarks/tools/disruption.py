"""Finding and killing the worker-level process of a run in flight (the kill_worker
scenario): the process is found from the running step's own pid by walking up its
ancestors, so what is killed is the process actually supervising that step."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import psutil

from benchmarks.tools.base import CapabilityMissing


def describe(proc: psutil.Process) -> str:
    """``pid 123 (python -m pipelines.kubeflow.run ...)``, the command cut short."""
    try:
        command = " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        command = "?"
    return f"pid {proc.pid} ({command[:80]})"


def ancestor_of(
    step_pid: int, chosen: Callable[[psutil.Process], bool], what: str
) -> psutil.Process:
    """The nearest ancestor of the step's process (itself excluded) for which ``chosen``
    holds; CapabilityMissing naming ``what`` when there is none (e.g. the step already
    ended, or the tool runs it elsewhere)."""
    try:
        ancestors = psutil.Process(step_pid).parents()
    except psutil.NoSuchProcess:
        raise CapabilityMissing(
            f"the running step's process {step_pid} is gone: no {what} to find from it"
        ) from None
    for proc in ancestors:
        try:
            if chosen(proc):
                return proc
        except psutil.Error:
            continue
    raise CapabilityMissing(f"no {what} among the ancestors of the step's process {step_pid}")


def sigkill(proc: psutil.Process, timeout_s: float = 10.0) -> str:
    """SIGKILL one process (not its group) and wait until it is gone; its description."""
    text = describe(proc)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout_s)
    except psutil.NoSuchProcess:
        pass  # it ended on its own just before: still gone, as wanted
    except psutil.TimeoutExpired:
        # A zombie not yet reaped by its parent counts as gone: it runs nothing.
        if proc.status() != psutil.STATUS_ZOMBIE:
            raise
    return text


def wait_group_gone(pgid: int, timeout_s: float) -> bool:
    """Wait until no process of group ``pgid`` is left (an orphaned step finishing);
    whether they all ended in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        members = []
        for proc in psutil.process_iter():
            try:
                if proc.status() != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                    members.append(proc)
            except (psutil.Error, ProcessLookupError):
                continue
        if not members:
            return True
        time.sleep(0.2)
    return False
