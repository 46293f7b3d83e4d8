"""The ML pipeline as a KFP v2 pipeline: the spec's six steps inside an ExitHandler.

The wiring is written out in KFP's own idiom (each task consumes its upstreams' output
artifacts); ``tests/kubeflow/test_ir.py`` reads the graph back from the compiled IR and checks
it equals ``shared_ml.spec.PIPELINE``. Retry policies are taken from the spec, never restated.

Parameters: ``config_json`` (the validated pipeline config as JSON), ``run_id`` (names the
run's step records, and keys KFP's cache so that a re-run with the same run id resumes),
``seed`` and ``webhook_url`` (empty: no notification).
"""

# No `from __future__ import annotations`: KFP reads the real annotation objects.
from kfp import dsl

from pipelines.kubeflow.components import (
    evaluate,
    ingest,
    notify_on_failure,
    preprocess,
    register,
    train,
    validate,
)
from shared_ml.spec import PIPELINE, RetryPolicy

PIPELINE_NAME = "orchbench-ml"


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
    """Apply the spec's retry policy for ``step``, and caching (resume re-uses outputs)."""
    task.set_retry(**retry_arguments(PIPELINE.step(step).retry))
    task.set_caching_options(enable_caching=True)
    return task


@dsl.pipeline(name=PIPELINE_NAME, description="orchbench: ingest -> ... -> register (shared_ml)")
def orchbench_ml(config_json: str, run_id: str, seed: int = 42, webhook_url: str = ""):
    common = {"config_json": config_json, "run_id": run_id, "seed": seed}
    notify = notify_on_failure(config_json=config_json, run_id=run_id, webhook_url=webhook_url)
    notify.set_caching_options(enable_caching=False)  # always report, never replay a report
    with dsl.ExitHandler(notify, name="run-steps"):
        ingested = as_spec_step(ingest(**common), "ingest")
        validated = as_spec_step(
            validate(dataset=ingested.outputs["dataset"], **common), "validate"
        )
        prepared = as_spec_step(
            preprocess(
                dataset=ingested.outputs["dataset"], report=validated.outputs["report"], **common
            ),
            "preprocess",
        )
        trained = as_spec_step(train(train_set=prepared.outputs["train_set"], **common), "train")
        evaluated = as_spec_step(
            evaluate(
                model=trained.outputs["model"], test_set=prepared.outputs["test_set"], **common
            ),
            "evaluate",
        )
        as_spec_step(
            register(
                model=trained.outputs["model"],
                transformer=prepared.outputs["transformer"],
                metrics=evaluated.outputs["metrics"],
                **common,
            ),
            "register",
        )
