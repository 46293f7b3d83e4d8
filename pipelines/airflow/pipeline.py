"""The ML pipeline as the Airflow 3 DAG ``orchbench_ml``: one TaskFlow task per spec step.

Each model candidate is one mapped branch:

```
ingest -> validate -> preprocess -> [train[c] -> evaluate[c]] per candidate c -> select
       -> register -> score
```

- **Fan-out**: ``preprocess`` returns the run's candidate names (read from the run's
  config at run time); the task group ``candidate`` (``train`` then ``evaluate``) is
  expanded over that list with dynamic task mapping, so ``train[i]``/``evaluate[i]``
  (map index ``i``, shown as the candidate's name) run side by side and ``evaluate[i]``
  waits only for ``train[i]``. The step result of ``preprocess`` (artifact URIs) travels
  under the XCom key ``step_result``.
- **Fan-in**: ``select`` receives every branch's result (the mapped XComs) and picks the
  best candidate; ``register`` and ``score`` follow.
- **Dates**: each task sets the run's partition from Airflow's logical date and data
  interval; a manual run without a logical date stands for the day it runs (``run_after``).
- **Retries** come from each step's ``RetryPolicy`` in ``shared_ml.spec.PIPELINE``; a
  non-retryable error becomes ``AirflowFailException`` (fails at once, retries unused).

Metadata: ``register`` has the registered model as its output asset
(``pipelines.airflow.metadata``); the asset event's extra carries the selected candidate,
its metrics and the model's registry version and location. The ``orchbench_model_report``
DAG below is scheduled on that asset.

Logs: shared_ml logs through ``logging``; the task process sends every record to
Airflow's task log (UI: the task instance's Logs tab; REST:
``/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try}``).

Triggers: the config's schedule (cron or preset, as a data-interval timetable: a run covers
one interval and starts when it is over; catchup off), OR an update of the input data
asset, OR a manual run (UI, CLI, REST) whose params may override the config path (or give
the whole config by value, ``conf={"config": {...}}``, as a cluster run does), the seed and
faults (``conf={"faults": {"train": {"transient_attempts": 1}}}``), OR a backfill.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    CronDataIntervalTimetable,
    Param,
    conf,
    dag,
    get_current_context,
    task,
    task_group,
)
from airflow.sdk.exceptions import AirflowFailException

from pipelines.airflow.alerts import EmailFailureNotifier, WebhookFailureNotifier
from pipelines.airflow.metadata import (
    REPORT_DAG_ID,
    model_asset,
    registered_model_extra,
    report_lines,
)
from pipelines.airflow.tasks import (
    INPUT_ASSET_NAME,
    ML_DAG_ID,
    OWNER,
    TAGS,
    parse_time_config,
    parse_time_triggers,
    records_run_id,
    retry_arguments,
    run_config,
    run_partition,
)
from shared_ml.config import PipelineConfig
from shared_ml.errors import is_retryable
from shared_ml.execution import execute_step, resolve_inputs
from shared_ml.spec import PIPELINE

log = logging.getLogger(__name__)
StepResult = dict[str, Any]  # {"outputs": {name: uri}, "metadata": {...}}
STEP_RESULT_KEY = "step_result"  # XCom key of preprocess's step result

_cron, _input_uri = parse_time_triggers()
input_data = Asset(name=INPUT_ASSET_NAME, uri=_input_uri, group="orchbench")
# Time OR data: the config's schedule, and every update of the input asset. A data-interval
# timetable: a run covers [logical date, next cron time) and starts once that interval is
# over, so a daily run reads the day it stands for. Backfills need the timetable too.
schedule = (
    AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable(_cron, timezone="UTC"), assets=input_data
    )
    if _cron
    else input_data
)


def _run_config(context: Any) -> PipelineConfig:
    """The run's config (params, faults) for its partition (Airflow's dates of the run)."""
    dag_run = context["dag_run"]
    partition = run_partition(
        dag_run.logical_date,
        dag_run.data_interval_start,
        dag_run.data_interval_end,
        dag_run.run_after,
    )
    return run_config(dict(context["params"])).for_partition(partition)


def _run_step(
    name: str, upstream: dict[str, StepResult | Sequence[StepResult]], branch: str | None = None
) -> StepResult:
    """Run one spec step inside an Airflow task: config and partition from the run, ids
    from the context. A fan-in upstream is the sequence of every branch's result."""
    context = get_current_context()
    if branch is not None:
        context["candidate"] = branch  # type: ignore[typeddict-unknown-key]  # map index label
    try:
        config = _run_config(context)
        produced = {
            step: [r["outputs"] for r in result]
            if isinstance(result, Sequence)
            else result["outputs"]
            for step, result in upstream.items()
        }
        return execute_step(
            name,
            config,
            resolve_inputs(name, produced),
            run_id=records_run_id(context["dag_run"].run_id),
            attempt=context["ti"].try_number,
            branch=branch,
        )
    except Exception as exc:
        if not is_retryable(exc):
            # Retrying cannot help (bad config, bad data): fail now, skip the retries.
            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
        raise


def _every_branch(pulled: Sequence[StepResult] | StepResult) -> list[StepResult]:
    """The fan-in as a list. Airflow pulls a mapped task group's XComs as a list with
    several branches, but as the value itself when there is only one."""
    return [pulled] if isinstance(pulled, Mapping) else list(pulled)


def _executor_config(name: str) -> dict[str, Any]:
    """Per-step pod resources, only when tasks run as pods (KubernetesExecutor)."""
    if "KubernetesExecutor" not in conf.get("core", "executor", fallback=""):
        return {}
    from pipelines.airflow.manifest import step_pod_override

    override = step_pod_override(name)
    return {"executor_config": {"pod_override": override}} if override else {}


def _step_task(name: str, **arguments: Any):
    """The TaskFlow decorator for step ``name``: its id, retry policy and pod resources;
    a per-candidate step's map index is labelled with its candidate's name."""
    branch_label = {"map_index_template": "{{ candidate }}"}
    return task(
        task_id=name,
        **retry_arguments(name),
        **_executor_config(name),
        **(branch_label if PIPELINE.step(name).per_candidate else {}),
        **arguments,
    )


@dag(
    dag_id=ML_DAG_ID,
    description="orchbench: ingest -> validate -> preprocess -> train[c] -> evaluate[c] "
    "(one mapped branch per candidate) -> select -> register -> score",
    schedule=schedule,
    # No start date, catchup off: once the scheduler sees the DAG it runs the latest
    # complete interval at once, then one run per interval; missed intervals are not made
    # up (backfills do that on request). The local services create scheduled and
    # asset-triggered runs only when started with schedules on (`[scheduler]
    # use_job_schedule`), so benchmarks see only the runs they trigger.
    catchup=False,
    max_active_runs=int(os.environ.get("ORCHBENCH_AIRFLOW_MAX_ACTIVE_RUNS", "1")),
    tags=TAGS,
    default_args={
        "owner": OWNER,
        # The webhook (Slack-compatible) and, when configured, e-mail via the SMTP provider.
        "on_failure_callback": [WebhookFailureNotifier(), EmailFailureNotifier()],
    },
    params={
        "config_path": Param(
            parse_time_config(),
            type="string",
            minLength=1,
            description="Pipeline config (YAML/JSON); relative to $ORCHBENCH_HOME or the repo.",
        ),
        "config": Param(
            None,
            type=["null", "object"],
            description="The whole pipeline config by value (what --target cluster sends); "
            "when given, config_path is not read.",
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
    def preprocess(ingest: StepResult, validate: StepResult) -> list[str]:
        """Returns the candidate names (what the branches expand over); the step result
        goes to the XCom key ``step_result``."""
        result = _run_step("preprocess", {"ingest": ingest, "validate": validate})
        get_current_context()["ti"].xcom_push(key=STEP_RESULT_KEY, value=result)
        return list(result["metadata"]["candidates"])

    @_step_task("train")
    def train(preprocess: StepResult, candidate: str) -> StepResult:
        return _run_step("train", {"preprocess": preprocess}, branch=candidate)

    @_step_task("evaluate")
    def evaluate(train: StepResult, preprocess: StepResult, candidate: str) -> StepResult:
        return _run_step("evaluate", {"train": train, "preprocess": preprocess}, branch=candidate)

    @task_group(group_id="candidate", prefix_group_id=False)
    def candidate_branch(candidate: str, prepared: StepResult):
        """One branch per model candidate: train it, then evaluate it."""
        model = train(prepared, candidate)
        return model, evaluate(model, prepared, candidate)

    @_step_task("select")
    def select(
        train: Sequence[StepResult] | StepResult, evaluate: Sequence[StepResult] | StepResult
    ) -> StepResult:
        return _run_step(
            "select", {"train": _every_branch(train), "evaluate": _every_branch(evaluate)}
        )

    @_step_task("register", outlets=[model_asset])
    def register(select: StepResult, preprocess: StepResult) -> StepResult:
        """Registers the selected model; the model asset's event carries what was registered."""
        result = _run_step("register", {"select": select, "preprocess": preprocess})
        context = get_current_context()
        extra = registered_model_extra(
            _run_config(context), records_run_id(context["dag_run"].run_id), select, result
        )
        context["outlet_events"][model_asset].extra = extra
        return result

    @_step_task("score")
    def score(register: StepResult, ingest: StepResult) -> StepResult:
        return _run_step("score", {"register": register, "ingest": ingest})

    dataset = ingest()
    report = validate(dataset)
    candidates = preprocess(dataset, report)
    prepared = candidates[STEP_RESULT_KEY]
    models, metrics = candidate_branch.partial(prepared=prepared).expand(candidate=candidates)
    chosen = select(models, metrics)
    entry = register(chosen, prepared)
    score(entry, dataset)


ml_dag = orchbench_ml()


@dag(
    dag_id=REPORT_DAG_ID,
    description="orchbench: a report line per model registered by orchbench_ml "
    "(scheduled on the registered-model asset)",
    schedule=model_asset,
    catchup=False,
    max_active_runs=1,
    tags=TAGS,
    default_args={"owner": OWNER, "retries": 1, "retry_delay": timedelta(seconds=5)},
    doc_md="""Runs after every model registration of ``orchbench_ml`` (an event of the
asset ``orchbench_registered_model``): logs one line per registration from the event's
extra (candidate, metrics, version, promotion, model URI) and returns the lines.""",
)
def orchbench_model_report() -> None:
    @task(task_id="report")
    def report() -> list[str]:
        # A manual run of this DAG has no triggering event: it reports nothing.
        events = get_current_context()["triggering_asset_events"].get(model_asset, [])
        lines = report_lines([dict(event.extra) for event in events])
        for line in lines:
            log.info("registered: %s", line)
        if not lines:
            log.info("no registration event triggered this run")
        return lines

    report()


report_dag = orchbench_model_report()

if __name__ == "__main__":
    # In-process run without services: `python -m pipelines.airflow.pipeline`
    # (needs a migrated metadata DB in AIRFLOW_HOME: `airflow db migrate`).
    ml_dag.test()
