"""KFP's own metadata for each run: output artifact metadata, as KFP users read it.

On a cluster the launcher records every output artifact's metadata in ML Metadata (MLMD) as
the artifact's custom properties, and the KFP UI draws it: a run's graph -> the step -> its
output artifact -> Visualizations. Locally, kfp.local writes the same metadata into each
task's ``executor_output.json`` in the pipeline root (``read_task_outputs`` reads it back).

- Every output artifact links to the shared_ml store: ``store_uri`` (where the same bytes
  live in the content-addressed store) and ``blake3`` (their digest, the store's name for
  them). ``select`` hands on one of its inputs, so its outputs take the link of the input
  artifact with the same digest.
- ``system.Metrics`` (evaluate's per candidate, select's for the chosen one): the candidate's
  accuracy, F1 and ROC AUC as scalar metrics (the UI's "Scalar Metrics" table), plus the
  links of the metrics JSON and of the model they describe (``model_store_uri``,
  ``model_blake3``).
- ``system.ClassificationMetrics`` (evaluate's, per candidate): the confusion matrix and, for
  a binary label, the ROC curve (the UI's "Confusion Matrix" and "ROC Curve" plots), computed
  from the candidate's model on the test split, with the same links.

Metrics artifacts also get their data as their file: kfp.local's cache treats an output
artifact without a file as a miss.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from kfp import dsl

from shared_ml.artifacts import ArtifactStore, content_digest
from shared_ml.threads import single_threaded_native_pools

STORE_URI = "store_uri"
DIGEST = "blake3"
MODEL_STORE_URI = "model_store_uri"
MODEL_DIGEST = "model_blake3"
EXECUTOR_OUTPUT = "executor_output.json"  # kfp.local's name for a task's executor output


def _artifacts(given: Iterable[Any]) -> Iterator[dsl.Artifact]:
    for item in given:
        if isinstance(item, list):  # a collected input (dsl.Collected)
            yield from item
        else:
            yield item


def store_link(
    store: ArtifactStore, uri: str, data: bytes, inputs: Mapping[str, Any]
) -> dict[str, str]:
    """``{store_uri, blake3}`` of bytes a step produced at ``uri``. A step that hands on one
    of its input files (select) gets the store URI its upstream recorded for those bytes."""
    digest = content_digest(data)
    if uri.startswith(store.root + "/"):
        return {STORE_URI: uri, DIGEST: digest}
    for artifact in _artifacts(inputs.values()):
        if artifact.metadata.get(DIGEST) == digest and STORE_URI in artifact.metadata:
            return {STORE_URI: artifact.metadata[STORE_URI], DIGEST: digest}
    return {DIGEST: digest}


def model_link(link: Mapping[str, str]) -> dict[str, str]:
    """A model's store link, under the keys an artifact describing that model uses."""
    renamed = {STORE_URI: MODEL_STORE_URI, DIGEST: MODEL_DIGEST}
    return {renamed[k]: v for k, v in link.items() if k in renamed}


def describe_metrics(
    artifact: dsl.Metrics, data: bytes, link: Mapping[str, str], model: Mapping[str, str]
) -> None:
    """Fill a Metrics artifact: the scalar metrics, the links, and the metrics JSON as file."""
    evaluation = json.loads(data)
    for name, value in evaluation.get("metrics", {}).items():
        artifact.log_metric(name, value)
    artifact.metadata.update({**link, **model_link(model)})
    if "candidate" in evaluation:
        artifact.metadata["candidate"] = evaluation["candidate"]


def classification_figures(store: ArtifactStore, model_path: str, test_set_path: str) -> dict:
    """The confusion matrix and (binary label) ROC curve of a model on the test split, with
    the same calls ``shared_ml.steps.evaluate`` makes, so the figures match its metrics."""
    from sklearn.metrics import confusion_matrix, roc_curve

    estimator = store.get_object(model_path)
    data = store.get_object(test_set_path)
    classes = list(estimator.classes_)
    with single_threaded_native_pools():
        y_pred = estimator.predict(data["X"])
        proba = estimator.predict_proba(data["X"])
    figures: dict[str, Any] = {
        "categories": [str(c) for c in classes],
        "confusion_matrix": confusion_matrix(data["y"], y_pred, labels=classes).tolist(),
        "roc": None,  # a ROC curve needs one positive class: binary labels only
    }
    if len(classes) == 2:
        fpr, tpr, thresholds = roc_curve(data["y"], proba[:, 1], pos_label=classes[1])
        figures["roc"] = {
            "positive_class": str(classes[1]),
            "fpr": [float(x) for x in fpr],
            "tpr": [float(x) for x in tpr],
            # scikit-learn's first threshold is +inf (nothing predicted positive): JSON and
            # MLMD hold no infinity, and no probability exceeds 1.
            "thresholds": [min(float(x), 1.0) for x in thresholds],
        }
    return figures


def describe_classification(
    artifact: dsl.ClassificationMetrics,
    figures: Mapping[str, Any],
    metrics_link: Mapping[str, str],
    model: Mapping[str, str],
) -> None:
    """Fill a ClassificationMetrics artifact; its file holds the figures and the links."""
    artifact.log_confusion_matrix(list(figures["categories"]), figures["confusion_matrix"])
    roc = figures["roc"]
    if roc is not None:
        artifact.log_roc_curve(roc["fpr"], roc["tpr"], roc["thresholds"])
        artifact.metadata["positive_class"] = roc["positive_class"]
    links = {**metrics_link, **model_link(model)}
    artifact.metadata.update(links)
    Path(artifact.path).parent.mkdir(parents=True, exist_ok=True)
    Path(artifact.path).write_text(json.dumps({**figures, **links}, indent=2), encoding="utf-8")


def read_task_outputs(task_root: str | Path) -> dict[str, dict[str, Any]]:
    """A finished local task's output artifacts as kfp.local recorded them, from the
    ``executor_output.json`` in its task root: ``{output name: {name, uri, metadata}}``."""
    path = Path(task_root) / EXECUTOR_OUTPUT
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no executor output (the task did not succeed)")
    output = json.loads(path.read_text(encoding="utf-8"))
    return {name: listed["artifacts"][0] for name, listed in output.get("artifacts", {}).items()}
