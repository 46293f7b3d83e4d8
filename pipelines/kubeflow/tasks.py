"""One KFP lightweight component per spec step (the exit handler's notifier is in ``alerts``).

Each body is a thin call into ``task_runtime.run_step`` (which calls
``shared_ml.execution.execute_step``): the step logic stays in shared_ml. Imports are inside
the functions because KFP serialises only each function's source into the IR.

Every step component takes the pipeline's ``config_json``, ``run_id``, ``seed`` and
``logical_date`` (the run's partition). ``train`` and ``evaluate`` also take ``candidate``,
the ``dsl.ParallelFor`` loop item; ``select`` takes every branch's model and metrics as
lists (``dsl.Collected``). ``preprocess`` returns the candidate names: the list the loop
fans out over, known once the config is read at run time.

No component installs anything at run time: ``install_kfp_package=False`` and no
``packages_to_install``, so the IR has no ``pip install`` line. The image already has kfp,
shared_ml and pipelines; locally the launching environment has them.
"""

# No `from __future__ import annotations`: KFP reads the real annotation objects.
from typing import List  # noqa: UP035 - KFP's type checker knows typing.List, not list[...]

from kfp import dsl
from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

# Pinned, never `latest`: the image built from the repo's Dockerfile with EXTRA=kubeflow.
SHARED_ML_IMAGE = "orchbench/shared-ml:0.1.0-kubeflow"

# Component parameter names that differ from the spec's (a Python function cannot have an
# input and an output both called ``metrics``): {step: {spec name: component name}}.
PARAMETER_NAMES = {"select": {"metrics": "candidate_metrics"}}

# Output artifacts that are not spec outputs: they exist for the KFP UI and MLMD only
# (``metadata.py``), and no step consumes them.
UI_OUTPUTS = {"evaluate": ("classification",)}

component = dsl.component(base_image=SHARED_ML_IMAGE, install_kfp_package=False)


@component
def ingest(config_json: str, run_id: str, seed: int, logical_date: str, dataset: Output[Dataset]):
    """Load the run's partition of the configured source into a dataset (an Arrow IPC file)."""
    from pipelines.kubeflow.task_runtime import run_step

    run_step(
        "ingest", config_json, run_id, seed, logical_date, inputs={}, outputs={"dataset": dataset}
    )


@component
def validate(
    config_json: str,
    run_id: str,
    seed: int,
    logical_date: str,
    dataset: Input[Dataset],
    report: Output[Artifact],
):
    """Check the declared column schema, nulls, label set and row count."""
    from pipelines.kubeflow.task_runtime import run_step

    run_step(
        "validate",
        config_json,
        run_id,
        seed,
        logical_date,
        inputs={"dataset": dataset},
        outputs={"report": report},
    )


@component
def preprocess(
    config_json: str,
    run_id: str,
    seed: int,
    logical_date: str,
    dataset: Input[Dataset],
    report: Input[Artifact],
    train_set: Output[Dataset],
    test_set: Output[Dataset],
    transformer: Output[Model],
) -> List[str]:  # noqa: UP006
    """Split, then fit the column transformer on the training split only. Returns the
    candidate names, which the ParallelFor fans out over."""
    from pipelines.kubeflow.task_runtime import run_step

    result = run_step(
        "preprocess",
        config_json,
        run_id,
        seed,
        logical_date,
        inputs={"dataset": dataset, "report": report},
        outputs={"train_set": train_set, "test_set": test_set, "transformer": transformer},
    )
    return list(result["metadata"]["candidates"])


@component
def train(
    config_json: str,
    run_id: str,
    seed: int,
    logical_date: str,
    candidate: str,
    train_set: Input[Dataset],
    model: Output[Model],
):
    """Fit one candidate's estimator (one loop iteration per candidate)."""
    from pipelines.kubeflow.task_runtime import run_step

    run_step(
        "train",
        config_json,
        run_id,
        seed,
        logical_date,
        inputs={"train_set": train_set},
        outputs={"model": model},
        branch=candidate,
    )


@component
def evaluate(
    config_json: str,
    run_id: str,
    seed: int,
    logical_date: str,
    candidate: str,
    model: Input[Model],
    test_set: Input[Dataset],
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
):
    """Accuracy, F1, ROC AUC, prediction hash and the quality gate of one candidate; for the
    KFP UI also its confusion matrix and ROC curve (``classification``)."""
    from pipelines.kubeflow.task_runtime import run_step

    run_step(
        "evaluate",
        config_json,
        run_id,
        seed,
        logical_date,
        inputs={"model": model, "test_set": test_set},
        outputs={"metrics": metrics},
        branch=candidate,
        classification=classification,
    )


@component
def select(
    config_json: str,
    run_id: str,
    seed: int,
    logical_date: str,
    models: Input[List[Model]],  # noqa: UP006
    candidate_metrics: Input[List[Metrics]],  # noqa: UP006
    model: Output[Model],
    metrics: Output[Metrics],
):
    """The fan-in: pick the best candidate on the gate's primary metric."""
    from pipelines.kubeflow.task_runtime import run_step

    run_step(
        "select",
        config_json,
        run_id,
        seed,
        logical_date,
        inputs={"models": models, "metrics": candidate_metrics},
        outputs={"model": model, "metrics": metrics},
    )


@component
def register(
    config_json: str,
    run_id: str,
    seed: int,
    logical_date: str,
    model: Input[Model],
    transformer: Input[Model],
    metrics: Input[Metrics],
    registry_entry: Output[Artifact],
):
    """Version the selected model; promote it if it passes the gate and beats the champion."""
    from pipelines.kubeflow.task_runtime import run_step

    run_step(
        "register",
        config_json,
        run_id,
        seed,
        logical_date,
        inputs={"model": model, "transformer": transformer, "metrics": metrics},
        outputs={"registry_entry": registry_entry},
    )


@component
def score(
    config_json: str,
    run_id: str,
    seed: int,
    logical_date: str,
    registry_entry: Input[Artifact],
    dataset: Input[Dataset],
    predictions: Output[Dataset],
):
    """The champion after registration scores the run's partition."""
    from pipelines.kubeflow.task_runtime import run_step

    run_step(
        "score",
        config_json,
        run_id,
        seed,
        logical_date,
        inputs={"registry_entry": registry_entry, "dataset": dataset},
        outputs={"predictions": predictions},
    )


STEP_COMPONENTS = {
    "ingest": ingest,
    "validate": validate,
    "preprocess": preprocess,
    "train": train,
    "evaluate": evaluate,
    "select": select,
    "register": register,
    "score": score,
}
