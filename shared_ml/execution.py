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

from shared_ml.config import PipelineConfig
from shared_ml.errors import is_retryable
from shared_ml.faults import apply_faults, count_attempt, faults_for
from shared_ml.records import StepError, StepRecord, write_step_record
from shared_ml.spec import PIPELINE
from shared_ml.steps import StepOutput


def step_function(name: str) -> Callable[..., StepOutput]:
    PIPELINE.step(name)  # raises a clear KeyError for an unknown step
    module = import_module(f"shared_ml.steps.{name}")
    return getattr(module, name)


class PeakRssSampler:
    """Samples this process's resident memory in a thread; keeps the maximum."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self._process = psutil.Process()
        self._interval = interval_s
        self._stop = threading.Event()
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakRssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


def execute_step(
    name: str,
    config: PipelineConfig,
    inputs: Mapping[str, str],
    *,
    run_id: str,
    attempt: int | None = None,
) -> dict[str, Any]:
    """Run step ``name``; return ``{"outputs": {...}, "metadata": {...}}`` (JSON-able).

    ``attempt`` is the orchestrator's own try number if it has one; otherwise the durable
    per-run counter is used. Exceptions propagate unchanged after being recorded, so that
    each tool's retry machinery sees them (``shared_ml.errors.is_retryable`` tells which).
    """
    function = step_function(name)
    fault = faults_for(config, name)
    durable_attempt = count_attempt(config.storage.runs_root, run_id, name)
    attempt = attempt or durable_attempt
    record = StepRecord(step=name, attempt=attempt, started_at=datetime.now(UTC), pid=os.getpid())
    write_step_record(config.storage.runs_root, run_id, record)
    started = time.perf_counter()
    try:
        with PeakRssSampler() as sampler:
            apply_faults(fault, name, durable_attempt)
            result = function(config, **inputs)
    except BaseException as exc:
        record.outcome = "failed"
        record.error = StepError(
            type=f"{type(exc).__module__}.{type(exc).__qualname__}",
            message=str(exc),
            retryable=is_retryable(exc),
        )
        _finish(record, started, None)
        write_step_record(config.storage.runs_root, run_id, record)
        raise
    record.outcome = "success"
    record.outputs = dict(result.outputs)
    record.metadata = dict(result.metadata)
    _finish(record, started, sampler.peak)
    write_step_record(config.storage.runs_root, run_id, record)
    return {"outputs": dict(result.outputs), "metadata": dict(result.metadata)}


def _finish(record: StepRecord, started: float, peak_rss: int | None) -> None:
    record.duration_s = round(time.perf_counter() - started, 6)
    record.ended_at = datetime.now(UTC)
    if peak_rss is not None:
        record.peak_rss_mb = round(peak_rss / 2**20, 2)


def resolve_inputs(name: str, produced: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Map a step's input parameters to URIs, given ``{step: outputs}`` of its upstreams."""
    inputs = {}
    for param, ref in PIPELINE.step(name).inputs.items():
        upstream, output = ref.split(".", 1)
        inputs[param] = produced[upstream][output]
    return inputs
