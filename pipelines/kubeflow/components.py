"""One KFP lightweight component per spec step, plus the exit handler's notifier.

Each body is a thin call into ``component_runtime.run_step`` (which calls
``shared_ml.execution.execute_step``): the step logic stays in shared_ml. Imports are inside
the functions because KFP serialises only each function's source into the IR.

No component installs anything at run time: ``install_kfp_package=False`` and no
``packages_to_install``, so the IR has no ``pip install`` line. The image already has kfp,
shared_ml and pipelines; locally the launching environment has them.
"""

# No `from __future__ import annotations`: KFP reads the real annotation objects.
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

# Pinned, never `latest`: the image built from the repo's Dockerfile with EXTRA=kubeflow.
SHARED_ML_IMAGE = "orchbench/shared-ml:0.1.0-kubeflow"

component = dsl.component(base_image=SHARED_ML_IMAGE, install_kfp_package=False)


@component
def ingest(config_json: str, run_id: str, seed: int, dataset: Output[Dataset]):
    """Load the configured source into a dataset (an Arrow IPC file)."""
    from pipelines.kubeflow.component_runtime import run_step

    run_step("ingest", config_json, run_id, seed, inputs={}, outputs={"dataset": dataset})


@component
def validate(
    config_json: str, run_id: str, seed: int, dataset: Input[Dataset], report: Output[Artifact]
):
    """Check schema, types, nulls, label set and row count."""
    from pipelines.kubeflow.component_runtime import run_step

    run_step(
        "validate",
        config_json,
        run_id,
        seed,
        inputs={"dataset": dataset},
        outputs={"report": report},
    )


@component
def preprocess(
    config_json: str,
    run_id: str,
    seed: int,
    dataset: Input[Dataset],
    report: Input[Artifact],
    train_set: Output[Dataset],
    test_set: Output[Dataset],
    transformer: Output[Model],
):
    """Split, then fit the column transformer on the training split only."""
    from pipelines.kubeflow.component_runtime import run_step

    run_step(
        "preprocess",
        config_json,
        run_id,
        seed,
        inputs={"dataset": dataset, "report": report},
        outputs={"train_set": train_set, "test_set": test_set, "transformer": transformer},
    )


@component
def train(
    config_json: str, run_id: str, seed: int, train_set: Input[Dataset], model: Output[Model]
):
    """Fit the configured estimator."""
    from pipelines.kubeflow.component_runtime import run_step

    run_step(
        "train",
        config_json,
        run_id,
        seed,
        inputs={"train_set": train_set},
        outputs={"model": model},
    )


@component
def evaluate(
    config_json: str,
    run_id: str,
    seed: int,
    model: Input[Model],
    test_set: Input[Dataset],
    metrics: Output[Metrics],
):
    """Accuracy, F1, ROC AUC, prediction hash and the quality gate."""
    from pipelines.kubeflow.component_runtime import run_step

    run_step(
        "evaluate",
        config_json,
        run_id,
        seed,
        inputs={"model": model, "test_set": test_set},
        outputs={"metrics": metrics},
    )


@component
def register(
    config_json: str,
    run_id: str,
    seed: int,
    model: Input[Model],
    transformer: Input[Model],
    metrics: Input[Metrics],
    registry_entry: Output[Artifact],
):
    """Version the model; promote it if it passes the gate and beats the champion."""
    from pipelines.kubeflow.component_runtime import run_step

    run_step(
        "register",
        config_json,
        run_id,
        seed,
        inputs={"model": model, "transformer": transformer, "metrics": metrics},
        outputs={"registry_entry": registry_entry},
    )


@component
def notify_on_failure(
    config_json: str, run_id: str, webhook_url: str, status: dsl.PipelineTaskFinalStatus
) -> str:
    """Exit handler: post a Slack-compatible failure message when the pipeline did not succeed."""
    from pipelines.kubeflow.component_runtime import notify_if_failed

    return notify_if_failed(config_json, run_id, webhook_url, status.state, status.error_message)


STEP_COMPONENTS = {
    "ingest": ingest,
    "validate": validate,
    "preprocess": preprocess,
    "train": train,
    "evaluate": evaluate,
    "register": register,
}
