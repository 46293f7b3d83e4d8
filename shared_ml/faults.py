"""Fault injection for the recovery tests and benchmarks.

Faults come from the config's ``faults`` section and from ``$ORCHBENCH_FAULTS`` (JSON,
``{"step": {...FaultSpec...}}``; it wins over the config). Attempts are counted durably
in a file per run and step, under a file lock, so "fail the first N attempts" holds
whichever process or machine the orchestrator runs the retry in. On an object store (a
cluster's pods share no file system, hence no lock) each attempt creates its own marker
object with a create-only write instead.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

from filelock import FileLock
from pydantic import ValidationError

from shared_ml import storage
from shared_ml.config import FaultSpec, PipelineConfig
from shared_ml.errors import ConfigError, InjectedNonRetryableError, InjectedTransientError

FAULTS_ENV = "ORCHBENCH_FAULTS"


def faults_for(config: PipelineConfig, step: str) -> FaultSpec | None:
    spec = config.faults.get(step)
    raw = os.environ.get(FAULTS_ENV)
    if raw:
        try:
            env_faults = json.loads(raw)
            if not isinstance(env_faults, dict):
                raise ValueError("expected a JSON object mapping step names to faults")
            if step in env_faults:
                spec = FaultSpec.model_validate(env_faults[step])
        except (ValueError, ValidationError) as err:
            raise ConfigError(f"${FAULTS_ENV}", str(err)) from None
    return spec


def count_attempt(runs_root: str, run_id: str, step: str) -> int:
    """Increment and return the durable attempt counter of ``step`` in ``run_id``."""
    if storage.is_remote(runs_root):
        # Markers 1..n exist (marker k is created only once k-1 is seen), so the first
        # free number is this attempt's; a concurrent attempt that takes it moves us on.
        markers = storage.join(runs_root, run_id, "faults", f"{step}.attempts")
        attempt = len(storage.list_names(markers)) + 1
        while not storage.create_exclusive(
            storage.join(markers, f"{attempt:06d}"), str(os.getpid()).encode()
        ):
            attempt += 1
        return attempt
    folder = Path(runs_root) / run_id / "faults"
    folder.mkdir(parents=True, exist_ok=True)
    counter = folder / f"{step}.count"
    with FileLock(str(counter) + ".lock", timeout=60):
        current = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(current + 1))
    return current + 1


def wait_at_barrier(runs_root: str, run_id: str, step: str, key: str, fault: FaultSpec) -> bool:
    """Mark this attempt of ``key`` as started, then wait (at most ``barrier_timeout_s``)
    until ``fault.barrier`` attempts of ``step`` have started in this run, whatever the
    branch. Returns whether they all arrived.

    Why: a test that branches run at once must not depend on how long a branch's work
    happens to take. With a barrier, a tool that runs branches in parallel always shows
    them overlapping; one that runs them one after another times out here and shows none.
    """
    folder = storage.join(runs_root, run_id, "faults", f"{step}.started")
    storage.write_text(storage.join(folder, f"{key}.{os.getpid()}.{time.monotonic_ns()}"), "")
    deadline = time.monotonic() + fault.barrier_timeout_s
    while time.monotonic() < deadline:
        if len(storage.list_names(folder)) >= fault.barrier:
            return True
        time.sleep(0.05)
    return False


def apply_faults(fault: FaultSpec | None, step: str, durable_attempt: int) -> None:
    """Raise, sleep or die as the fault spec says for this attempt."""
    if fault is None:
        return
    if fault.kill_attempts and durable_attempt <= fault.kill_attempts:
        # Die mid-step, as an OOM-killed or evicted worker would: no cleanup, no record.
        timer = threading.Timer(fault.kill_after_s, os.kill, (os.getpid(), signal.SIGKILL))
        timer.daemon = True
        timer.start()
        time.sleep(fault.kill_after_s + 60)
    if fault.delay_s:
        time.sleep(fault.delay_s)
    if fault.non_retryable:
        raise InjectedNonRetryableError(f"injected non-retryable failure in step {step!r}")
    if durable_attempt <= fault.transient_attempts:
        raise InjectedTransientError(
            f"injected transient failure in step {step!r} "
            f"(attempt {durable_attempt} of {fault.transient_attempts} planned failures)"
        )
