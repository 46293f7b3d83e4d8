"""Run one step with its bookkeeping: fault injection, timing, peak memory, records.

This is the one function every tool's task calls (``execute_step("train", ...)``), so
that each tool records the same facts in the same way. It never reads an orchestrator's
context: the run id and attempt number are passed in by the caller.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib import import_module
from typing import Any

import psutil

from shared_ml import storage
from shared_ml.config import PipelineConfig
from shared_ml.errors import is_retryable
from shared_ml.faults import apply_faults, count_attempt, faults_for, wait_at_barrier
from shared_ml.logs import captured, get_logger, log_format
from shared_ml.process_clock import process_started_at
from shared_ml.records import StepError, StepRecord, step_log_location, write_step_record
from shared_ml.spec import PIPELINE, task_key
from shared_ml.steps import StepOutput

log = get_logger(__name__)


def step_function(name: str) -> Callable[..., StepOutput]:
    PIPELINE.step(name)  # raises a clear KeyError for an unknown step
    module = import_module(f"shared_ml.steps.{name}")
    return getattr(module, name)


class PeakRssSampler:
    """The peak resident memory of this process while a ``with`` block runs.

    One daemon thread per process samples the RSS every ``INTERVAL_S`` for every open
    window (steps may overlap when a tool runs tasks in threads); it is started once,
    not per step, because starting and joining a thread per step cost more than the
    sampling itself.
    """

    INTERVAL_S = 0.01
    _windows: set[PeakRssSampler] = set()
    _lock = threading.Lock()
    _thread: threading.Thread | None = None
    _active = threading.Event()  # set while any window is open; the thread sleeps otherwise

    def __init__(self) -> None:
        self.peak = psutil.Process().memory_info().rss

    @classmethod
    def _sample_forever(cls) -> None:
        process = psutil.Process()
        while True:
            cls._active.wait()
            time.sleep(cls.INTERVAL_S)
            with cls._lock:
                if not cls._windows:
                    continue
                rss = process.memory_info().rss
                for window in cls._windows:
                    window.peak = max(window.peak, rss)

    @classmethod
    def _forget_after_fork(cls) -> None:
        # A forked child inherits the state (maybe a held lock) but not the thread.
        cls._windows = set()
        cls._lock = threading.Lock()
        cls._active = threading.Event()
        cls._thread = None

    def __enter__(self) -> PeakRssSampler:
        with self._lock:
            if self._thread is None:
                type(self)._thread = threading.Thread(
                    target=self._sample_forever, name="orchbench-rss-sampler", daemon=True
                )
                self._thread.start()
            self._windows.add(self)
            self._active.set()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._windows.discard(self)
            if not self._windows:
                self._active.clear()
        self.peak = max(self.peak, psutil.Process().memory_info().rss)


os.register_at_fork(after_in_child=PeakRssSampler._forget_after_fork)


def execute_step(
    name: str,
    config: PipelineConfig,
    inputs: Mapping[str, str],
    *,
    run_id: str,
    attempt: int | None = None,
    branch: str | None = None,
) -> dict[str, Any]:
    """Run step ``name``; return ``{"outputs": {...}, "metadata": {...}}`` (JSON-able).

    ``branch`` is the candidate of a per-candidate step (``train``, ``evaluate``), passed
    to the step function as ``candidate``. ``attempt`` is the orchestrator's own try
    number if it has one; otherwise the durable per-run counter is used. Exceptions
    propagate unchanged after being recorded, so that each tool's retry machinery sees
    them (``shared_ml.errors.is_retryable`` tells which).
    """
    function = step_function(name)
    if PIPELINE.step(name).per_candidate:
        if branch is None:
            raise ValueError(f"step {name!r} runs once per candidate: pass branch=<candidate>")
        inputs = {**inputs, "candidate": branch}
    elif branch is not None:
        raise ValueError(f"step {name!r} has no branches, got branch={branch!r}")
    key = task_key(name, branch)
    fault = faults_for(config, name)
    # The durable counter (a locked file) is only needed to number attempts for a tool
    # that does not, or to plan injected faults across processes. Each branch counts its
    # own attempts: a fault on `train` hits every candidate's first attempt.
    if attempt is None or fault is not None:
        durable_attempt = count_attempt(config.storage.runs_root, run_id, key)
    else:
        durable_attempt = attempt
    attempt = attempt or durable_attempt
    record = StepRecord(
        step=name,
        branch=branch,
        attempt=attempt,
        started_at=datetime.now(UTC),
        pid=os.getpid(),
        # Read per step, not at import: a task process forked from a parent that had
        # imported this module (Airflow's preload variant) has a start of its own.
        process_started_at=datetime.fromtimestamp(process_started_at(), UTC),
    )
    record_path = write_step_record(config.storage.runs_root, run_id, record)
    log_format()  # a bad $ORCHBENCH_LOG_FORMAT fails here, before the work, not mid-step
    with captured(run_id, key, attempt) as capture:
        try:
            return _run_recorded(
                function, config, inputs, record, record_path, run_id, fault, durable_attempt
            )
        finally:
            # The step's own log, next to its record (the plain runner's log viewer).
            storage.write_text(step_log_location(record_path), capture.text())


def _run_recorded(
    function: Callable[..., StepOutput],
    config: PipelineConfig,
    inputs: Mapping[str, Any],
    record: StepRecord,
    record_path: str,
    run_id: str,
    fault: Any,
    durable_attempt: int,
) -> dict[str, Any]:
    log.info("%s started (pid %d)", record.key, record.pid)
    started = time.perf_counter()
    try:
        with PeakRssSampler() as sampler:
            if fault is not None and fault.barrier:
                arrived = wait_at_barrier(
                    config.storage.runs_root, run_id, record.step, record.key, fault
                )
                log.info("%s barrier of %d: all arrived=%s", record.key, fault.barrier, arrived)
            apply_faults(fault, record.step, durable_attempt)
            result = function(config, **inputs)
    except BaseException as exc:
        record.outcome = "failed"
        record.error = StepError(
            type=f"{type(exc).__module__}.{type(exc).__qualname__}",
            message=str(exc),
            retryable=is_retryable(exc),
        )
        _finish(record, started, None)
        write_step_record(config.storage.runs_root, run_id, record, record_path)
        log.error(
            "%s failed after %.3f s (%s, %s): %s",
            record.key,
            record.duration_s,
            record.error.type,
            "retryable" if record.error.retryable else "not retryable",
            exc,
            exc_info=not isinstance(exc, KeyboardInterrupt | SystemExit),
        )
        raise
    record.outcome = "success"
    record.outputs = dict(result.outputs)
    record.metadata = dict(result.metadata)
    _finish(record, started, sampler.peak)
    write_step_record(config.storage.runs_root, run_id, record, record_path)
    log.info(
        "%s succeeded in %.3f s, peak RSS %.1f MB; %s",
        record.key,
        record.duration_s,
        record.peak_rss_mb,
        key_figures(record.metadata),
    )
    return {"outputs": dict(result.outputs), "metadata": dict(result.metadata)}


def key_figures(metadata: Mapping[str, Any], limit: int = 8) -> str:
    """The step's small scalar results (rows, metrics, decisions) as ``k=v`` pairs."""
    pairs = []
    for name, value in metadata.items():
        if isinstance(value, float):
            pairs.append(f"{name}={value:.4g}")
        elif isinstance(value, int | str | bool) and len(str(value)) <= 24:  # not digests
            pairs.append(f"{name}={value}")
        elif isinstance(value, Mapping) and all(isinstance(v, float) for v in value.values()):
            pairs += [f"{name}.{k}={v:.4g}" for k, v in list(value.items())[:4]]
    return ", ".join(pairs[:limit]) or "no figures"


def _finish(record: StepRecord, started: float, peak_rss: int | None) -> None:
    record.duration_s = round(time.perf_counter() - started, 6)
    record.ended_at = datetime.now(UTC)
    if peak_rss is not None:
        record.peak_rss_mb = round(peak_rss / 2**20, 2)


def resolve_inputs(name: str, produced: Mapping[str, Any]) -> dict[str, Any]:
    """Map a step's input parameters to URIs, given the outputs of its upstreams.

    ``produced[step]`` is that step's outputs (``{output: uri}``); for a per-candidate
    upstream feeding a plain step (the fan-in) it is the list of every branch's outputs,
    and the parameter becomes the list of their URIs. A per-candidate step is given its
    own branch's outputs.
    """
    inputs: dict[str, Any] = {}
    for param, ref in PIPELINE.step(name).inputs.items():
        upstream, output = ref.split(".", 1)
        given = produced[upstream]
        inputs[param] = [o[output] for o in given] if isinstance(given, list) else given[output]
    return inputs
