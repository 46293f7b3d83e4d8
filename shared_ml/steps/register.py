"""Version the model and promote it if it passes the gate and beats the champion."""

from __future__ import annotations

from shared_ml.artifacts import ArtifactStore
from shared_ml.config import PipelineConfig
from shared_ml.registry import ModelRegistry
from shared_ml.steps import StepOutput


def register(config: PipelineConfig, model: str, transformer: str, metrics: str) -> StepOutput:
    store = ArtifactStore(config.storage.artifact_root)
    evaluation = store.get_json(metrics)
    registry = ModelRegistry(config.storage.registry_root, config.name)
    model_digest = ArtifactStore.digest_of(model)
    result = registry.register(
        model_uri=model,
        model_digest=model_digest,
        config_fingerprint=config.ml_fingerprint(),
        metrics=evaluation["metrics"],
        gate_passed=evaluation["gate_passed"],
        primary_metric=config.gate.primary_metric,
        extra={"transformer_uri": transformer, "prediction_hash": evaluation["prediction_hash"]},
    )
    entry_uri = store.put_json(
        # No absolute paths inside: the same model registers to the same bytes anywhere.
        {"registry": config.name, "version": result.version, "model_digest": model_digest},
        "registry_entries",
    )
    return StepOutput(
        outputs={"registry_entry": entry_uri}, metadata={"registration": result.as_dict()}
    )
