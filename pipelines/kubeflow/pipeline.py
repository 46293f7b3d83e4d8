"""The ML pipeline as a KFP v2 pipeline: the spec's DAG inside an ExitHandler.

    ingest -> validate -> preprocess -> ParallelFor(candidates){train -> evaluate}
           -> select(Collected models, Collected metrics) -> register -> score

The wiring is written out in KFP's own idiom (each task consumes its upstreams' output
artifacts; the candidate branches are a ``dsl.ParallelFor`` over the names ``preprocess``
returns, and ``select`` receives every branch's outputs through ``dsl.Collected``).
``tests/kubeflow/test_ir.py`` reads the graph back from the compiled IR, expands the loop
per candidate and checks it equals ``shared_ml.spec.PIPELINE.expand``. Retry policies are
taken from the spec, never restated.

Parameters: ``config_json`` (the validated pipeline config as JSON), ``run_id`` (names the
run's step records, and keys KFP's cache so that a re-run with the same run id resumes),
``seed``, ``logical_date`` (``YYYY-MM-DD``, the partition the run processes; empty: today)
and ``webhook_url`` (empty: no notification).
"""

# No `from __future__ import annotations`: KFP reads the real annotation objects.
from kfp import dsl

from pipelines.kubeflow.alerts import notify_on_failure
from pipelines.kubeflow.cluster_env import on_cluster_storage
from pipelines.kubeflow.tasks import (
    evaluate,
    ingest,
    preprocess,
    register,
    score,
    select,
    train,
    validate,
)
from shared_ml.spec import PIPELINE, RetryPolicy

PIPELINE_NAME = "orchbench-ml"
LOOP_NAME = "candidates"


def duration(seconds: float) -> str:
    """A KFP duration string. Whole seconds: the local runner reads only the seconds field."""
    return f"{round(seconds)}s"


def retry_arguments(policy: RetryPolicy) -> dict[str, object]:
    """The spec's retry policy as ``PipelineTask.set_retry`` arguments.

    KFP waits ``backoff_duration * backoff_factor**n`` before retry n+1, capped by
    ``backoff_max_duration``: the same schedule as ``RetryPolicy.delay_before_retry``.
    """
    return {
        "num_retries": policy.max_retries,
        "backoff_duration": duration(policy.delay_s),
        "backoff_factor": policy.backoff,
        "backoff_max_duration": duration(policy.max_delay_s),
    }


def as_spec_step(task: dsl.PipelineTask, step: str) -> dsl.PipelineTask:
    """Apply the spec's retry policy for ``step``, caching (resume re-uses outputs), and
    the pod's writable home and artifact store (``cluster_env``)."""
    task.set_retry(**retry_arguments(PIPELINE.step(step).retry))
    task.set_caching_options(enable_caching=True)
    return on_cluster_storage(task)


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="orchbench: ingest -> ... -> train[c], evaluate[c] -> select -> register -> score",
)
def orchbench_ml(
    config_json: str,
    run_id: str,
    seed: int = 42,
    logical_date: str = "",
    webhook_url: str = "",
):
    common = {
        "config_json": config_json,
        "run_id": run_id,
        "seed": seed,
        "logical_date": logical_date,
    }
    notify = notify_on_failure(config_json=config_json, run_id=run_id, webhook_url=webhook_url)
    notify.set_caching_options(enable_caching=False)  # always report, never replay a report
    on_cluster_storage(notify)  # it reads the failed step's record from the store
    with dsl.ExitHandler(notify, name="run-steps"):
        ingested = as_spec_step(ingest(**common), "ingest")
        dataset = ingested.outputs["dataset"]
        validated = as_spec_step(validate(dataset=dataset, **common), "validate")
        prepared = as_spec_step(
            preprocess(dataset=dataset, report=validated.outputs["report"], **common),
            "preprocess",
        )
        # One iteration per candidate name that preprocess returns (config order). On a
        # cluster every iteration is its own pods, all at once unless `parallelism` caps
        # them; kfp.local runs at most two at a time (its ParallelExecutor's cap).
        with dsl.ParallelFor(prepared.outputs["Output"], name=LOOP_NAME) as candidate:
            trained = as_spec_step(
                train(candidate=candidate, train_set=prepared.outputs["train_set"], **common),
                "train",
            )
            evaluated = as_spec_step(
                evaluate(
                    candidate=candidate,
                    model=trained.outputs["model"],
                    test_set=prepared.outputs["test_set"],
                    **common,
                ),
                "evaluate",
            )
        selected = as_spec_step(
            select(
                models=dsl.Collected(trained.outputs["model"]),
                candidate_metrics=dsl.Collected(evaluated.outputs["metrics"]),
                **common,
            ),
            "select",
        )
        registered = as_spec_step(
            register(
                model=selected.outputs["model"],
                transformer=prepared.outputs["transformer"],
                metrics=selected.outputs["metrics"],
                **common,
            ),
            "register",
        )
        as_spec_step(
            score(registry_entry=registered.outputs["registry_entry"], dataset=dataset, **common),
            "score",
        )
