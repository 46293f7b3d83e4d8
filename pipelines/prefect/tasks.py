"""One Prefect ``@task`` per step of ``shared_ml.spec.PIPELINE``.

- each task calls ``shared_ml.execution.execute_step``; ``train`` and ``evaluate`` take a
  ``candidate`` parameter (the branch: the flow maps them over the candidate names) and
  their task runs are named after it, ``train[forest]``, the spec's task key;
- retries, delays and exponential backoff come from the step's ``RetryPolicy``;
  ``retry_condition_fn`` refuses to retry ``shared_ml.errors.NonRetryableError``;
- a task receives its upstream tasks' results as parameters named after the upstream
  steps (a list of every branch's result for the fan-in, ``select``), so Prefect records
  the edges as the task runs' ``task_inputs``;
- results are persisted as JSON under the storage base (the object store on a cluster, so
  a resumed run's fresh pod finds them; ``result_storage``), with the cache policy
  ``(INPUTS - "faults_json") + TASK_SOURCE``: the key holds the orchbench run id, the
  config (its partition included: one key per date), the branch and the upstream results,
  so a re-run under the same run id and date reuses each task that completed.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import INPUTS, TASK_SOURCE
from prefect.filesystems import RemoteFileSystem

from shared_ml import storage
from shared_ml.config import validate_config
from shared_ml.errors import is_retryable
from shared_ml.execution import execute_step, resolve_inputs
from shared_ml.spec import PIPELINE, RetryPolicy, task_key

RESULTS_ENV = "ORCHBENCH_PREFECT_RESULTS"
RESULTS_BLOCK = "orchbench-results"  # a RemoteFileSystem block, when results are remote
# Faults are a test/benchmark knob, not an input of the work: a re-run without the fault
# must hit the cache for the tasks that already succeeded.
STEP_CACHE_POLICY = (INPUTS - "faults_json") + TASK_SOURCE


def results_location() -> str:
    """Where task results (and so the resume cache) live: ``$ORCHBENCH_PREFECT_RESULTS``,
    else ``var/prefect/results`` under the storage base: ``<ORCHBENCH_HOME>`` here, the
    object store on a cluster (``$ORCHBENCH_ARTIFACT_ROOT``), where every flow-run pod
    finds them: a pod's own disk goes with it, and a resumed run would redo every step."""
    return os.environ.get(RESULTS_ENV) or storage.resolve_root("var/prefect/results")


def result_storage() -> Path | str:
    """The tasks' ``result_storage``. A remote location is named by the slug of the block
    ``save_results_block`` saved: Prefect takes remote result storage only as a block
    saved on the server (a Task refuses an unsaved one)."""
    location = results_location()
    if storage.is_remote(location):
        return f"remote-file-system/{RESULTS_BLOCK}"
    return Path(location.removeprefix("file://"))


def save_results_block() -> str | None:
    """Save (or update) the results block on the server the API URL names, when results
    go to a remote location; return that location. Deploy calls it: the flow-run pods
    load the block by its slug and reach the store with their own credentials (fsspec
    reads the AWS_* env), since the block keeps none."""
    location = results_location()
    if not storage.is_remote(location):
        return None
    RemoteFileSystem(basepath=location).save(RESULTS_BLOCK, overwrite=True)
    return location


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
    spec = PIPELINE.step(step)
    return {
        "name": step,
        "retries": spec.retry.max_retries,
        "retry_delay_seconds": retry_delays(spec.retry),
        "retry_condition_fn": retry_unless_non_retryable,
        "cache_policy": STEP_CACHE_POLICY,
        "persist_result": True,
        "result_storage": result_storage(),
        "result_serializer": "json",
        # The spec's task key: `train[forest]` for a branch (a template over the parameter).
        "task_run_name": task_key(step, "{candidate}" if spec.per_candidate else None),
    }


def run_step(
    step: str,
    config_json: str,
    faults_json: str,
    run_id: str,
    candidate: str | None = None,
    **upstream: dict[str, Any] | list[dict[str, Any]],
) -> dict[str, Any]:
    """Rebuild the config with its faults and hand the step to shared_ml."""
    data = json.loads(config_json)
    data["faults"] = json.loads(faults_json)
    config = validate_config(data, f"config of step {step!r}")
    produced = {
        name: [r["outputs"] for r in result] if isinstance(result, list) else result["outputs"]
        for name, result in upstream.items()
    }
    return execute_step(
        step, config, resolve_inputs(step, produced), run_id=run_id, branch=candidate
    )


# Upstream parameters are named after the upstream step, as in the spec.
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
def train(
    config_json: str, faults_json: str, run_id: str, candidate: str, preprocess: dict
) -> dict[str, Any]:
    return run_step("train", config_json, faults_json, run_id, candidate, preprocess=preprocess)


@task(**step_options("evaluate"))
def evaluate(
    config_json: str,
    faults_json: str,
    run_id: str,
    candidate: str,
    train: dict,
    preprocess: dict,
) -> dict[str, Any]:
    return run_step(
        "evaluate", config_json, faults_json, run_id, candidate, train=train, preprocess=preprocess
    )


@task(**step_options("select"))
def select(
    config_json: str, faults_json: str, run_id: str, train: list[dict], evaluate: list[dict]
) -> dict[str, Any]:
    """The fan-in: one result per branch in each list."""
    return run_step("select", config_json, faults_json, run_id, train=train, evaluate=evaluate)


@task(**step_options("register"))
def register(
    config_json: str, faults_json: str, run_id: str, select: dict, preprocess: dict
) -> dict[str, Any]:
    return run_step(
        "register", config_json, faults_json, run_id, select=select, preprocess=preprocess
    )


@task(**step_options("score"))
def score(
    config_json: str, faults_json: str, run_id: str, register: dict, ingest: dict
) -> dict[str, Any]:
    return run_step("score", config_json, faults_json, run_id, register=register, ingest=ingest)


STEP_TASKS = {
    "ingest": ingest,
    "validate": validate,
    "preprocess": preprocess,
    "train": train,
    "evaluate": evaluate,
    "select": select,
    "register": register,
    "score": score,
}
COMMON_PARAMETERS = {"config_json", "faults_json", "run_id", "candidate"}


def _check_against_spec() -> None:
    """Each task's upstream parameters are exactly its spec step's upstream steps."""
    if set(STEP_TASKS) != set(PIPELINE.step_names):
        raise RuntimeError(
            f"Prefect tasks {sorted(STEP_TASKS)} != spec steps {PIPELINE.step_names}"
        )
    for name, prefect_task in STEP_TASKS.items():
        upstream = set(inspect.signature(prefect_task.fn).parameters) - COMMON_PARAMETERS
        if upstream != set(PIPELINE.step(name).upstream):
            raise RuntimeError(f"task {name!r} takes {sorted(upstream)}, spec upstream differs")


_check_against_spec()
