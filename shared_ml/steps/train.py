"""Fit the estimator named in the config, with its hyperparameters."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from sklearn.base import ClassifierMixin

from shared_ml.artifacts import ArtifactStore
from shared_ml.config import PipelineConfig
from shared_ml.errors import ConfigError
from shared_ml.steps import StepOutput
from shared_ml.threads import single_threaded_native_pools

# Defaults chosen for determinism and for a 2-core machine (single-threaded forests).
# Classes are imported on demand: validating a config must not import every estimator.
_ESTIMATORS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "logistic_regression": ("sklearn.linear_model", "LogisticRegression", {"max_iter": 1000}),
    "random_forest": (
        "sklearn.ensemble",
        "RandomForestClassifier",
        {"n_estimators": 100, "n_jobs": 1},
    ),
    "gradient_boosting": ("sklearn.ensemble", "HistGradientBoostingClassifier", {}),
}


def build_estimator(
    name: str, params: dict[str, Any], seed: int | None = None, where: str = "model.params"
) -> ClassifierMixin:
    module, class_name, defaults = _ESTIMATORS[name]
    estimator = getattr(import_module(module), class_name)(**defaults)
    known = estimator.get_params()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}",
            f"unknown hyperparameter for {name}; expected one of {sorted(known)}",
        )
    estimator.set_params(**params)
    if seed is not None and "random_state" in known and "random_state" not in params:
        estimator.set_params(random_state=seed)
    return estimator


def check_estimator_params(name: str, params: dict[str, Any], where: str = "model.params") -> None:
    """Fail at config time, not mid-pipeline, on a bad hyperparameter."""
    estimator = build_estimator(name, params, where=where)
    validate = getattr(estimator, "_validate_params", None)
    if validate is None:
        return
    try:
        validate()
    except (ValueError, TypeError) as err:
        bad = next((k for k in params if f"'{k}'" in str(err)), None)
        raise ConfigError(f"{where}.{bad}" if bad else where, str(err)) from None


def train(config: PipelineConfig, train_set: str, candidate: str) -> StepOutput:
    """Fit candidate ``candidate`` (one branch of the fan-out)."""
    spec = config.model.candidate(candidate)
    store = ArtifactStore(config.storage.artifact_root)
    data = store.get_object(train_set)
    estimator = build_estimator(spec.estimator, spec.params, seed=config.seed)
    with single_threaded_native_pools():
        estimator.fit(data["X"], data["y"])
    uri = store.put_object(estimator, "models")
    return StepOutput(
        outputs={"model": uri},
        metadata={
            "candidate": candidate,
            "estimator": spec.estimator,
            "model_digest": ArtifactStore.digest_of(uri),
            "train_rows": int(data["X"].shape[0]),
        },
    )
