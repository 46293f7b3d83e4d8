"""The plain-Python baseline: the spec's task graph executed by a thread pool, in one process.

It honours each step's retry policy (delay and exponential backoff) and fails at once on
non-retryable errors, exactly as the orchestrated pipelines are meant to. A task starts
as soon as its upstream tasks are done, so the candidate branches (``train[c]`` then
``evaluate[c]``) run side by side; scikit-learn's fitting releases the GIL for most of
its work. Every tool is compared against it.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, date, datetime
from typing import Any

from shared_ml.artifacts import clear_memo
from shared_ml.config import Partition, PipelineConfig
from shared_ml.errors import is_retryable
from shared_ml.execution import execute_step, resolve_inputs
from shared_ml.records import RunRecord, collect_run_record, write_run_record
from shared_ml.spec import PIPELINE, PipelineSpec, parse_task_key

ProgressCallback = Callable[[str, str, int], None]  # (task key, event, attempt)


def new_run_id(prefix: str) -> str:
    """A unique run id that every tool accepts as a run name and every filesystem as a
    folder name: letters, digits, '.', '_' and '-' (a label such as ``airflow+postgres``
    becomes ``airflow-postgres``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", prefix).strip("-") or "run"
    return f"{safe}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def _run_task(
    key: str,
    config: PipelineConfig,
    inputs: dict[str, Any],
    run_id: str,
    spec: PipelineSpec,
    notify: ProgressCallback,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    """One task with its retries; raises the last error when it finally fails."""
    step, branch = parse_task_key(key)
    policy = spec.step(step).retry
    attempt = 1
    while True:
        notify(key, "start", attempt)
        try:
            result = execute_step(
                step, config, inputs, run_id=run_id, attempt=attempt, branch=branch
            )
        except Exception as exc:
            if is_retryable(exc) and attempt <= policy.max_retries:
                notify(key, "retry", attempt)
                sleep(policy.delay_before_retry(attempt))
                attempt += 1
                continue
            notify(key, "failed", attempt)
            raise
        notify(key, "success", attempt)
        return result


def _inputs_of(step: str, branch: str | None, spec: PipelineSpec, done: dict, candidates) -> dict:
    produced: dict[str, Any] = {}
    for up in spec.step(step).upstream:
        if not spec.step(up).per_candidate:
            produced[up] = done[up]["outputs"]
        elif branch is not None:
            produced[up] = done[f"{up}[{branch}]"]["outputs"]
        else:  # the fan-in: every branch's outputs, in candidate order
            produced[up] = [done[f"{up}[{c}]"]["outputs"] for c in candidates]
    return resolve_inputs(step, produced)


def run_pipeline(
    config: PipelineConfig,
    *,
    run_id: str | None = None,
    logical_date: date | str | Partition | None = None,
    spec: PipelineSpec = PIPELINE,
    max_workers: int | None = None,
    on_progress: ProgressCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RunRecord:
    """Run the pipeline for ``logical_date`` (default: the config's partition, else today).

    ``max_workers`` bounds how many tasks run at once (default: one per candidate).
    """
    run_id = run_id or new_run_id("local")
    if logical_date is not None or config.partition is None:
        config = config.for_partition(logical_date)
    lock = threading.Lock()
    raw_notify = on_progress or (lambda key, event, attempt: None)

    def notify(key: str, event: str, attempt: int) -> None:
        with lock:  # callbacks print; keep their lines whole
            raw_notify(key, event, attempt)

    candidates = config.candidate_names
    graph = spec.expand(candidates)
    started_at = datetime.now(UTC)
    done: dict[str, dict[str, Any]] = {}
    # The runner's own moments per task: submitted to the pool, result collected (after
    # which its downstream may be submitted): "dispatched" and "persisted".
    moments: dict[str, dict[str, str]] = {}
    status = "success"
    with ThreadPoolExecutor(
        max_workers=max_workers or len(candidates), thread_name_prefix="orchbench-task"
    ) as pool:
        running: dict[Future, str] = {}
        pending = dict(graph)
        while pending or running:
            if status == "success":
                for key in [k for k, ups in pending.items() if ups <= done.keys()]:
                    del pending[key]
                    step, branch = parse_task_key(key)
                    inputs = _inputs_of(step, branch, spec, done, candidates)
                    moments[key] = {"dispatched": datetime.now(UTC).isoformat()}
                    future = pool.submit(
                        _run_task, key, config, inputs, run_id, spec, notify, sleep
                    )
                    running[future] = key
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                key = running.pop(future)
                moments[key]["persisted"] = datetime.now(UTC).isoformat()
                try:
                    done[key] = future.result()
                except Exception:
                    status = "failed"  # no new tasks start; running ones finish
    record = collect_run_record(
        runs_root=config.storage.runs_root,
        run_id=run_id,
        tool="local",
        pipeline=spec.name,
        config_fingerprint=config.ml_fingerprint(),
        seed=config.seed,
        status=status,
        started_at=started_at,
        ended_at=datetime.now(UTC),
        partition=config.partition,
        tool_details={"task_moments": moments},
    )
    record.accepted_at = started_at
    write_run_record(config.storage.runs_root, record)
    clear_memo()  # the run's artifacts are on disk; give their memory back
    return record
