"""The plain-Python baseline: the spec executed in dependency order, in one process.

It honours each step's retry policy (delay and exponential backoff) and fails at once on
non-retryable errors, exactly as the orchestrated pipelines are meant to. Every tool is
compared against it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from shared_ml.artifacts import clear_memo
from shared_ml.config import PipelineConfig
from shared_ml.errors import is_retryable
from shared_ml.execution import execute_step, resolve_inputs
from shared_ml.records import RunRecord, collect_run_record, write_run_record
from shared_ml.spec import PIPELINE, PipelineSpec

ProgressCallback = Callable[[str, str, int], None]  # (step, event, attempt)


def new_run_id(tool: str) -> str:
    return f"{tool}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def run_pipeline(
    config: PipelineConfig,
    *,
    run_id: str | None = None,
    spec: PipelineSpec = PIPELINE,
    on_progress: ProgressCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RunRecord:
    run_id = run_id or new_run_id("local")
    notify = on_progress or (lambda step, event, attempt: None)
    started_at = datetime.now(UTC)
    produced: dict[str, dict[str, str]] = {}
    status = "success"
    for name in spec.topological_order:
        policy = spec.step(name).retry
        attempt = 1
        while True:
            notify(name, "start", attempt)
            try:
                result = execute_step(
                    name, config, resolve_inputs(name, produced), run_id=run_id, attempt=attempt
                )
            except Exception as exc:
                if is_retryable(exc) and attempt <= policy.max_retries:
                    notify(name, "retry", attempt)
                    sleep(policy.delay_before_retry(attempt))
                    attempt += 1
                    continue
                notify(name, "failed", attempt)
                status = "failed"
                break
            notify(name, "success", attempt)
            produced[name] = result["outputs"]
            break
        if status == "failed":
            break
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
    )
    write_run_record(config.storage.runs_root, record)
    clear_memo()  # the run's artifacts are on disk; give their memory back
    return record
