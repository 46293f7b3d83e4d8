"""Version the selected model and promote it if it passes the gate and beats the champion."""

from __future__ import annotations

from shared_ml.artifacts import ArtifactStore
from shared_ml.config import PipelineConfig
from shared_ml.logs import get_logger
from shared_ml.registry import ModelRegistry
from shared_ml.steps import StepOutput

log = get_logger(__name__)


def in_store(store: ArtifactStore, uri: str, kind: str) -> str:
    """``uri`` itself when the store wrote it, else a copy in the store: a tool may hand a
    step its own copy of an artifact (KFP), and the registry must point at durable bytes."""
    if uri.startswith(store.root + "/"):
        return uri
    return store.put_bytes(store.get_bytes(uri), kind, ".pkl")


def register(config: PipelineConfig, model: str, transformer: str, metrics: str) -> StepOutput:
    store = ArtifactStore(config.storage.artifact_root)
    evaluation = store.get_json(metrics)
    model = in_store(store, model, "models")
    transformer = in_store(store, transformer, "transformers")
    registry = ModelRegistry(config.storage.registry_root, config.name)
    model_digest = ArtifactStore.digest_of(model)
    result = registry.register(
        model_uri=model,
        model_digest=model_digest,
        config_fingerprint=config.ml_fingerprint(),
        metrics=evaluation["metrics"],
        gate_passed=evaluation["gate_passed"],
        primary_metric=config.gate.primary_metric,
        extra={
            "transformer_uri": transformer,
            "prediction_hash": evaluation["prediction_hash"],
            "candidate": evaluation.get("candidate"),
            "logical_date": config.logical_date.isoformat() if config.logical_date else None,
        },
    )
    log.info(
        "registry %s: version %s, %s (%s); champion now version %s",
        config.name,
        result.version,
        "promoted" if result.promoted else "not promoted",
        result.reason,
        result.champion_version,
    )
    entry_uri = store.put_json(
        # No absolute paths inside: the same model registers to the same bytes anywhere.
        # The champion after this registration is what `score` deploys.
        {
            "registry": config.name,
            "version": result.version,
            "model_digest": model_digest,
            "champion_version": result.champion_version,
        },
        "registry_entries",
    )
    return StepOutput(
        outputs={"registry_entry": entry_uri}, metadata={"registration": result.as_dict()}
    )
