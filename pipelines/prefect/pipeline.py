"""The ML pipeline as a Prefect 3 flow over the tasks of ``pipelines.prefect.tasks``.

The spec's graph in Prefect's idiom:

    ingest -> validate -> preprocess -> train.map(candidates) -> evaluate.map(...) -> select
           -> register -> score

- ``train`` and ``evaluate`` are *mapped* over the config's candidate names (one task run
  per branch, named ``train[<candidate>]``); shared inputs go in as ``unmapped(...)``, and
  ``evaluate`` is mapped over the ``train`` futures, so branch ``c``'s evaluation waits for
  branch ``c``'s model only;
- ``select`` is the fan-in: it receives the lists of every branch's futures;
- the thread-pool task runner has a thread for every task of the largest run a config can
  declare, so the branches of one run execute at the same time (scikit-learn releases the
  GIL for most of its fitting);
- hooks: ``on_failure`` and ``on_crashed`` alert (``alerts.py``); at the end the candidates
  and the selected model become Prefect artifacts (``metadata.py``);
- the run's date: the ``logical_date`` parameter (a backfill), else the flow run's
  scheduled start time (a scheduled run's slot; a manual run is scheduled "now": today).
  It becomes the config's partition, which picks the data and is part of every task's
  cache key.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.futures import PrefectFuture, wait
from prefect.runtime import flow_run as current_flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from pipelines.prefect import tasks
from pipelines.prefect.alerts import notify_crash, notify_failure
from pipelines.prefect.metadata import publish_run_metadata
from pipelines.prefect.records import finish_run_record, run_id_for
from shared_ml.artifacts import clear_memo
from shared_ml.concurrency import task_concurrency
from shared_ml.config import PipelineConfig, parse_logical_date, validate_config
from shared_ml.spec import PIPELINE, task_key

FLOW_NAME = "orchbench-ml"


# The same task concurrency as every other tool ($ORCHBENCH_TASK_CONCURRENCY, default 4;
# benchmarks/tools/concurrency.yaml). A submitted task holds its thread while it waits for
# its upstreams, but tasks are submitted in dependency order and the pool serves them in
# that order, so every waiting task's upstreams already hold threads: no deadlock, and
# with 4 threads the 3 train branches of the bundled configs run at once.
TASK_THREADS = task_concurrency()


def run_logical_date(logical_date: str | None) -> date:
    """The date this flow run stands for (UTC): the parameter if given, else the day of
    the flow run's scheduled (expected) start time, else today."""
    if logical_date:
        return parse_logical_date(logical_date, "flow parameter 'logical_date'")
    scheduled = current_flow_run.scheduled_start_time
    return (scheduled or datetime.now(UTC)).astimezone(UTC).date()


def submit_pipeline(
    config_json: str, faults_json: str, run_id: str, candidates: tuple[str, ...]
) -> dict[str, PrefectFuture]:
    """Submit every task of one run; return task key (``train[forest]``) -> future."""
    common = (config_json, faults_json, run_id)
    shared = [unmapped(value) for value in common]
    names = list(candidates)
    ingested = tasks.ingest.submit(*common)
    validated = tasks.validate.submit(*common, ingest=ingested)
    preprocessed = tasks.preprocess.submit(*common, ingest=ingested, validate=validated)
    trained = tasks.train.map(*shared, candidate=names, preprocess=unmapped(preprocessed))
    evaluated = tasks.evaluate.map(
        *shared, candidate=names, train=trained, preprocess=unmapped(preprocessed)
    )
    selected = tasks.select.submit(*common, train=list(trained), evaluate=list(evaluated))
    registered = tasks.register.submit(*common, select=selected, preprocess=preprocessed)
    scored = tasks.score.submit(*common, register=registered, ingest=ingested)
    futures: dict[str, PrefectFuture] = {
        "ingest": ingested,
        "validate": validated,
        "preprocess": preprocessed,
        **{task_key("train", c): f for c, f in zip(names, trained, strict=True)},
        **{task_key("evaluate", c): f for c, f in zip(names, evaluated, strict=True)},
        "select": selected,
        "register": registered,
        "score": scored,
    }
    expected = PIPELINE.expand(candidates)
    if set(futures) != set(expected):
        raise RuntimeError(f"submitted {sorted(futures)}, the spec expands to {sorted(expected)}")
    return {key: futures[key] for key in expected}  # in the spec's topological order


def first_failure(futures: dict[str, PrefectFuture]) -> str | None:
    """The first task (in graph order) that failed, else the first that did not complete
    (an upstream failure leaves its downstream tasks NotReady)."""
    states = {key: future.state for key, future in futures.items()}
    failed = [k for k, s in states.items() if s.is_failed() or s.is_crashed()]
    unfinished = [k for k, s in states.items() if not s.is_completed()]
    return (failed or unfinished or [None])[0]


def publish_metadata(
    config: PipelineConfig, run_id: str, day: str | None, futures: dict[str, PrefectFuture]
) -> None:
    """The candidates table and the selected model as Prefect artifacts, once ``select``
    has completed. Not publishing them is logged, not raised: the run's outcome is its
    steps', and its run record has the same facts."""
    if not futures["select"].state.is_completed():
        return
    register = futures["register"]
    try:
        publish_run_metadata(
            pipeline_name=config.name,
            run_id=run_id,
            logical_date=day,
            registry=f"{config.storage.registry_root.removeprefix('file://')}/{config.name}",
            selected=futures["select"].result(),
            registered=register.result() if register.state.is_completed() else None,
        )
    except Exception as err:
        get_run_logger().warning("run metadata not published as artifacts: %s", err)


class PipelineStepFailed(RuntimeError):
    def __init__(self, step: str, message: str) -> None:
        self.step = step
        super().__init__(f"step {step!r} failed: {message}")


@flow(
    name=FLOW_NAME,
    on_failure=[notify_failure],
    on_crashed=[notify_crash],
    validate_parameters=True,
    task_runner=ThreadPoolTaskRunner(max_workers=TASK_THREADS),
)
def ml_pipeline(
    config: dict[str, Any],
    run_id: str | None = None,
    faults: dict[str, dict[str, Any]] | None = None,
    webhook_url: str | None = None,
    logical_date: str | None = None,
) -> dict[str, Any]:
    """Run the orchbench ML pipeline.

    ``config`` is the pipeline config as a mapping, by value (relative storage paths
    resolve under the flow process's ``$ORCHBENCH_ARTIFACT_ROOT``, the cluster's object
    store in a flow-run Job, else its ``$ORCHBENCH_HOME``); ``run_id`` is the orchbench run id under which
    steps write their records (default ``prefect-<flow run id>``; re-using it resumes from
    the cache); ``faults`` are merged over the config's own; ``webhook_url`` overrides
    ``$ORCHBENCH_WEBHOOK_URL`` for the failure and crash alerts; ``logical_date``
    (``YYYY-MM-DD``) is the date the run stands for, default the scheduled start's day.
    """
    run_id = run_id_for(run_id, current_flow_run.id)
    resolved = validate_config(config, "flow parameter 'config'")
    resolved = resolved.for_partition(run_logical_date(logical_date))
    all_faults = {
        **{step: spec.model_dump() for step, spec in resolved.faults.items()},
        **(faults or {}),
    }
    config_json = resolved.model_dump_json(exclude={"faults"})
    faults_json = json.dumps(all_faults, sort_keys=True)
    futures = submit_pipeline(config_json, faults_json, run_id, resolved.candidate_names)
    wait(list(futures.values()))
    clear_memo()  # tasks ran in this process; their artifacts are on disk now
    failed = first_failure(futures)
    day = resolved.logical_date.isoformat() if resolved.logical_date else None
    publish_metadata(resolved, run_id, day, futures)
    finish_run_record(
        resolved,
        run_id,
        status="failed" if failed else "success",
        details={"flow_run_id": str(current_flow_run.id), "logical_date": day},
    )
    if failed:
        raise PipelineStepFailed(failed, futures[failed].state.message or "no message")
    return {
        "run_id": run_id,
        "logical_date": day,
        "outputs": {key: future.result()["outputs"] for key, future in futures.items()},
    }
