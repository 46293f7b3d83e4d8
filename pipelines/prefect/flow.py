"""The ML pipeline as a Prefect 3 flow: one ``@task`` per step of ``shared_ml.spec.PIPELINE``.

Mapping from the spec to Prefect:

- each step is a task named after it, calling ``shared_ml.execution.execute_step``;
- retries, delays and exponential backoff come from the step's ``RetryPolicy``;
  ``retry_condition_fn`` refuses to retry ``shared_ml.errors.NonRetryableError``;
- edges: a task receives its upstream tasks' futures as arguments named after the upstream
  steps, so Prefect records them as ``task_inputs`` and starts a task as soon as its own
  upstreams are done (independent branches run concurrently on the thread-pool runner);
- results are persisted as JSON under a project-local folder, with the cache policy
  ``(INPUTS - "faults_json") + TASK_SOURCE``: a re-run with the same orchbench run id and
  config reuses every step that completed, and re-executes the rest. The Prefect flow run
  id is not part of the key; the orchbench run id is, so a fresh run id is a fresh run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import INPUTS, TASK_SOURCE
from prefect.futures import wait
from prefect.runtime import flow_run as current_flow_run

from pipelines.prefect.notify import notify_failure
from pipelines.prefect.records import finish_run_record, run_id_for
from shared_ml.artifacts import clear_memo
from shared_ml.config import orchbench_home, validate_config
from shared_ml.errors import is_retryable
from shared_ml.execution import execute_step, resolve_inputs
from shared_ml.spec import PIPELINE, RetryPolicy

RESULTS_ENV = "ORCHBENCH_PREFECT_RESULTS"
FLOW_NAME = "orchbench-ml"
# Faults are a test/benchmark knob, not an input of the work: a re-run without the fault
# must hit the cache for the steps that already succeeded.
STEP_CACHE_POLICY = (INPUTS - "faults_json") + TASK_SOURCE


def result_storage_path() -> Path:
    """Where task results (and so the resume cache) live: ``$ORCHBENCH_PREFECT_RESULTS``,
    else ``<ORCHBENCH_HOME>/var/prefect/results``."""
    explicit = os.environ.get(RESULTS_ENV)
    return Path(explicit) if explicit else orchbench_home() / "var" / "prefect" / "results"


def retry_delays(policy: RetryPolicy) -> list[float]:
    """Prefect takes one delay per retry: the spec's exponential backoff, capped."""
    return [policy.delay_before_retry(n) for n in range(1, policy.max_retries + 1)]


def retry_unless_non_retryable(task: Any, task_run: Any, state: Any) -> bool:
    """``retry_condition_fn``: retry everything except ``NonRetryableError``."""
    exc = state.data if isinstance(state.data, BaseException) else None
    if exc is None:
        try:
            exc = state.result(raise_on_failure=False)
        except Exception as err:  # the result itself could not be read: treat as transient
            exc = err
    return not isinstance(exc, BaseException) or is_retryable(exc)


def step_options(step: str) -> dict[str, Any]:
    policy = PIPELINE.step(step).retry
    return {
        "name": step,
        "retries": policy.max_retries,
        "retry_delay_seconds": retry_delays(policy),
        "retry_condition_fn": retry_unless_non_retryable,
        "cache_policy": STEP_CACHE_POLICY,
        "persist_result": True,
        "result_storage": result_storage_path(),
        "result_serializer": "json",
        "task_run_name": step,
    }


def run_step(
    step: str, config_json: str, faults_json: str, run_id: str, **upstream: dict[str, Any]
) -> dict[str, Any]:
    """Rebuild the config with its faults and hand the step to shared_ml."""
    data = json.loads(config_json)
    data["faults"] = json.loads(faults_json)
    config = validate_config(data, f"config of step {step!r}")
    produced = {name: result["outputs"] for name, result in upstream.items()}
    return execute_step(step, config, resolve_inputs(step, produced), run_id=run_id)


# One task per spec step. Upstream parameters are named after the upstream step.
@task(**step_options("ingest"))
def ingest(config_json: str, faults_json: str, run_id: str) -> dict[str, Any]:
    return run_step("ingest", config_json, faults_json, run_id)


@task(**step_options("validate"))
def validate(config_json: str, faults_json: str, run_id: str, ingest: dict) -> dict[str, Any]:
    return run_step("validate", config_json, faults_json, run_id, ingest=ingest)


@task(**step_options("preprocess"))
def preprocess(
    config_json: str, faults_json: str, run_id: str, ingest: dict, validate: dict
) -> dict[str, Any]:
    return run_step(
        "preprocess", config_json, faults_json, run_id, ingest=ingest, validate=validate
    )


@task(**step_options("train"))
def train(config_json: str, faults_json: str, run_id: str, preprocess: dict) -> dict[str, Any]:
    return run_step("train", config_json, faults_json, run_id, preprocess=preprocess)


@task(**step_options("evaluate"))
def evaluate(
    config_json: str, faults_json: str, run_id: str, train: dict, preprocess: dict
) -> dict[str, Any]:
    return run_step(
        "evaluate", config_json, faults_json, run_id, train=train, preprocess=preprocess
    )


@task(**step_options("register"))
def register(
    config_json: str,
    faults_json: str,
    run_id: str,
    train: dict,
    preprocess: dict,
    evaluate: dict,
) -> dict[str, Any]:
    return run_step(
        "register",
        config_json,
        faults_json,
        run_id,
        train=train,
        preprocess=preprocess,
        evaluate=evaluate,
    )


STEP_TASKS = {
    "ingest": ingest,
    "validate": validate,
    "preprocess": preprocess,
    "train": train,
    "evaluate": evaluate,
    "register": register,
}
if set(STEP_TASKS) != set(PIPELINE.step_names):
    raise RuntimeError(f"Prefect tasks {sorted(STEP_TASKS)} != spec steps {PIPELINE.step_names}")


class PipelineStepFailed(RuntimeError):
    def __init__(self, step: str, message: str) -> None:
        self.step = step
        super().__init__(f"step {step!r} failed: {message}")


@flow(name=FLOW_NAME, on_failure=[notify_failure], validate_parameters=True)
def ml_pipeline(
    config: dict[str, Any],
    run_id: str | None = None,
    faults: dict[str, dict[str, Any]] | None = None,
    webhook_url: str | None = None,
    logical_date: str | None = None,
) -> dict[str, Any]:
    """Run the orchbench ML pipeline.

    ``config`` is the pipeline config as a mapping (relative storage paths resolve against
    the flow process's ``$ORCHBENCH_HOME``); ``run_id`` is the orchbench run id under which
    steps write their records (default ``prefect-<flow run id>``; re-using it resumes from
    the cache); ``faults`` are merged over the config's own; ``webhook_url`` overrides
    ``$ORCHBENCH_WEBHOOK_URL`` for the failure notification; ``logical_date`` is the date a
    scheduled or backfilled run stands for (kept in the run record).
    """
    run_id = run_id_for(run_id, current_flow_run.id)
    resolved = validate_config(config, "flow parameter 'config'")
    all_faults = {
        **{step: spec.model_dump() for step, spec in resolved.faults.items()},
        **(faults or {}),
    }
    config_json = resolved.model_dump_json(exclude={"faults"})
    faults_json = json.dumps(all_faults, sort_keys=True)
    futures: dict[str, Any] = {}
    for name in PIPELINE.topological_order:
        upstream = {up: futures[up] for up in sorted(PIPELINE.step(name).upstream)}
        futures[name] = STEP_TASKS[name].submit(config_json, faults_json, run_id, **upstream)
    wait(list(futures.values()))
    clear_memo()  # tasks ran in this process; their artifacts are on disk now
    failed = next(
        (name for name in PIPELINE.topological_order if not futures[name].state.is_completed()),
        None,
    )
    finish_run_record(
        resolved,
        run_id,
        status="failed" if failed else "success",
        details={"flow_run_id": str(current_flow_run.id), "logical_date": logical_date},
    )
    if failed:
        raise PipelineStepFailed(failed, futures[failed].state.message or "no message")
    return {
        "run_id": run_id,
        "outputs": {name: future.result()["outputs"] for name, future in futures.items()},
    }
