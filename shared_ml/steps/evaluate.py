"""Score the model on the held-out split, hash its predictions, apply the quality gate."""

from __future__ import annotations

import hashlib

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from shared_ml.artifacts import ArtifactStore
from shared_ml.config import GateConfig, PipelineConfig
from shared_ml.steps import StepOutput
from shared_ml.threads import single_threaded_native_pools


def prediction_hash(labels: np.ndarray, probabilities: np.ndarray) -> str:
    """Proves two runs made the same predictions. Probabilities are rounded so that the
    hash is stable against last-bit noise but changes with any real difference."""
    digest = hashlib.sha256()
    digest.update(np.asarray(labels).astype("U32").tobytes())  # labels as text: any dtype
    digest.update(np.round(np.asarray(probabilities, dtype=np.float64), 10).tobytes())
    return digest.hexdigest()


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, classes) -> dict:
    binary = len(classes) == 2
    if binary:
        auc = roc_auc_score(y_true, proba[:, 1])
        f1 = f1_score(y_true, y_pred, pos_label=classes[1])
    else:
        auc = roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=classes)
        f1 = f1_score(y_true, y_pred, average="macro")
    return {
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 10),
        "f1": round(float(f1), 10),
        "roc_auc": round(float(auc), 10),
    }


def apply_gate(metrics: dict[str, float], gate: GateConfig) -> list[str]:
    failures = []
    for name, threshold in (
        ("accuracy", gate.min_accuracy),
        ("f1", gate.min_f1),
        ("roc_auc", gate.min_roc_auc),
    ):
        if metrics[name] < threshold:
            failures.append(f"{name} {metrics[name]:.4f} < {threshold:.4f}")
    return failures


def evaluate(config: PipelineConfig, model: str, test_set: str, candidate: str) -> StepOutput:
    """Score candidate ``candidate``'s model on the held-out split."""
    store = ArtifactStore(config.storage.artifact_root)
    estimator = store.get_object(model)
    data = store.get_object(test_set)
    with single_threaded_native_pools():
        y_pred = estimator.predict(data["X"])
        proba = estimator.predict_proba(data["X"])
    metrics = compute_metrics(data["y"], y_pred, proba, list(estimator.classes_))
    failures = apply_gate(metrics, config.gate)
    payload = {
        "candidate": candidate,
        # Lets the fan-in match each metrics file to its model whatever order a tool
        # collects branches in, and by content (KFP hands paths that are not our names).
        "model_digest": store.content_digest_of(model),
        "metrics": metrics,
        "prediction_hash": prediction_hash(y_pred, proba),
        "gate_passed": not failures,
        "gate_failures": failures,
    }
    uri = store.put_json(payload, "metrics")
    return StepOutput(outputs={"metrics": uri}, metadata=payload)
