"""The deployment step: the champion after registration scores the run's partition.

The champion is the version named in the registry entry (the new model if it was
promoted, else the standing champion), so a re-run scores with the same model and writes
the same predictions artifact. With no champion at all, nothing is scored, and the run
says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shared_ml.artifacts import ArtifactStore
from shared_ml.config import PipelineConfig
from shared_ml.errors import RegistryError
from shared_ml.logs import get_logger
from shared_ml.registry import ModelRegistry
from shared_ml.steps import StepOutput
from shared_ml.threads import single_threaded_native_pools

log = get_logger(__name__)


def score(config: PipelineConfig, registry_entry: str, dataset: str) -> StepOutput:
    store = ArtifactStore(config.storage.artifact_root)
    entry = store.get_json(registry_entry)
    champion_version = entry.get("champion_version")
    if champion_version is None:
        log.warning("no champion in registry %r: nothing scored", config.name)
        return StepOutput(
            outputs={"predictions": store.put_json({"scored": False}, "predictions")},
            metadata={"scored": False, "reason": "no champion: no model has passed the gate"},
        )
    registry = ModelRegistry(config.storage.registry_root, config.name)
    champion = registry.version(champion_version)
    if champion is None:
        raise RegistryError(f"registry {config.name!r} has no version {champion_version}")
    estimator = store.get_object(champion["model_uri"])
    transformer = store.get_object(champion["transformer_uri"])
    frame = store.get_frame(dataset)
    features = transformer.transform(frame[list(transformer.feature_names_in_)])
    with single_threaded_native_pools():
        labels = estimator.predict(features)
        proba = estimator.predict_proba(features)
    predictions = pd.DataFrame(
        {"row": np.arange(len(frame)), "prediction": labels, "confidence": proba.max(axis=1)}
    )
    uri = store.put_frame(predictions, "predictions")
    return StepOutput(
        outputs={"predictions": uri},
        metadata={
            "scored": True,
            "champion_version": champion_version,
            "champion_candidate": champion.get("candidate"),
            "rows_scored": len(predictions),
            "logical_date": config.logical_date.isoformat() if config.logical_date else None,
        },
    )
