"""The orchbench ML pipeline as an Airflow 3 DAG: one TaskFlow task per spec step.

Every task calls ``shared_ml.execution.execute_step`` and returns its small result
(artifact URIs plus metadata) through XCom; artifacts themselves stay in the store.
Retries, retry delay and exponential backoff come from each step's ``RetryPolicy`` in
``shared_ml.spec.PIPELINE``; a non-retryable error becomes ``AirflowFailException`` so
Airflow fails the task at once, without using its retries.

Triggers: the config's cron schedule, OR an update of the input data asset (event
trigger), OR a manual run (UI, CLI, REST) whose params may override the config path,
the seed and faults (``conf={"faults": {"train": {"transient_attempts": 1}}}``).
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    Param,
    conf,
    dag,
    get_current_context,
    task,
)
from airflow.sdk.exceptions import AirflowFailException

from pipelines.airflow.common import (
    DEFAULT_CONFIG,
    INPUT_ASSET_NAME,
    ML_DAG_ID,
    OWNER,
    TAGS,
    parse_time_triggers,
    records_run_id,
    retry_arguments,
    run_config,
)
from pipelines.airflow.notifier import WebhookFailureNotifier
from shared_ml.errors import is_retryable
from shared_ml.execution import execute_step, resolve_inputs

StepResult = dict[str, Any]  # {"outputs": {name: uri}, "metadata": {...}}

_cron, _input_uri = parse_time_triggers()
input_data = Asset(name=INPUT_ASSET_NAME, uri=_input_uri, group="orchbench")
# Time OR data: the cron schedule from the config, and every update of the input asset.
schedule = (
    AssetOrTimeSchedule(timetable=CronTriggerTimetable(_cron, timezone="UTC"), assets=input_data)
    if _cron
    else input_data
)


def _run_step(name: str, upstream: dict[str, StepResult]) -> StepResult:
    """Run one spec step inside an Airflow task: config from params, ids from the context."""
    context = get_current_context()
    try:
        config = run_config(dict(context["params"]))
        inputs = resolve_inputs(
            name, {step: result["outputs"] for step, result in upstream.items()}
        )
        return execute_step(
            name,
            config,
            inputs,
            run_id=records_run_id(context["dag_run"].run_id),
            attempt=context["ti"].try_number,
        )
    except Exception as exc:
        if not is_retryable(exc):
            # Retrying cannot help (bad config, bad data): fail now, skip the retries.
            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
        raise


def _executor_config(name: str) -> dict[str, Any]:
    """Per-step pod resources, only when tasks run as pods (KubernetesExecutor)."""
    if "KubernetesExecutor" not in conf.get("core", "executor", fallback=""):
        return {}
    from pipelines.airflow.pod_template import step_pod_override

    override = step_pod_override(name)
    return {"executor_config": {"pod_override": override}} if override else {}


def _step_task(name: str):
    """The TaskFlow decorator for step ``name``: its id, retry policy and pod resources."""
    return task(task_id=name, **retry_arguments(name), **_executor_config(name))


@dag(
    dag_id=ML_DAG_ID,
    description="orchbench: ingest -> validate -> preprocess -> train -> evaluate -> register",
    schedule=schedule,
    # No start_date: with catchup off, the first scheduled run is the next cron time,
    # not an immediate run for the latest past one. Backfills may cover any past range.
    catchup=False,
    max_active_runs=int(os.environ.get("ORCHBENCH_AIRFLOW_MAX_ACTIVE_RUNS", "1")),
    tags=TAGS,
    default_args={
        "owner": OWNER,
        "on_failure_callback": WebhookFailureNotifier(),
    },
    params={
        "config_path": Param(
            DEFAULT_CONFIG,
            type="string",
            minLength=1,
            description="Pipeline config (YAML/JSON); relative to $ORCHBENCH_HOME or the repo.",
        ),
        "seed": Param(
            None, type=["null", "integer"], minimum=0, description="Override the config's seed."
        ),
        "faults": Param(
            {},
            type="object",
            description='Fault injection per step, e.g. {"train": {"transient_attempts": 1}}.',
        ),
    },
    doc_md=__doc__,
)
def orchbench_ml() -> None:
    @_step_task("ingest")
    def ingest() -> StepResult:
        return _run_step("ingest", {})

    @_step_task("validate")
    def validate(ingest: StepResult) -> StepResult:
        return _run_step("validate", {"ingest": ingest})

    @_step_task("preprocess")
    def preprocess(ingest: StepResult, validate: StepResult) -> StepResult:
        return _run_step("preprocess", {"ingest": ingest, "validate": validate})

    @_step_task("train")
    def train(preprocess: StepResult) -> StepResult:
        return _run_step("train", {"preprocess": preprocess})

    @_step_task("evaluate")
    def evaluate(train: StepResult, preprocess: StepResult) -> StepResult:
        return _run_step("evaluate", {"train": train, "preprocess": preprocess})

    @_step_task("register")
    def register(train: StepResult, preprocess: StepResult, evaluate: StepResult) -> StepResult:
        return _run_step(
            "register", {"train": train, "preprocess": preprocess, "evaluate": evaluate}
        )

    dataset = ingest()
    report = validate(dataset)
    prepared = preprocess(dataset, report)
    model = train(prepared)
    metrics = evaluate(model, prepared)
    register(model, prepared, metrics)


ml_dag = orchbench_ml()

if __name__ == "__main__":
    # In-process run without services: `python -m pipelines.airflow.orchbench_ml`
    # (needs a migrated metadata DB in AIRFLOW_HOME: `airflow db migrate`).
    ml_dag.test()
