from __future__ import annotations

from typing import Any

from shared_ml.config import PipelineConfig, validate_config


def small_config(**overrides: Any) -> PipelineConfig:
    """The default bundled-dataset config with top-level keys replaced."""
    data: dict[str, Any] = {
        "name": "unit-test",
        "seed": 3,
        "data": {"source": {"kind": "bundled", "name": "breast_cancer"}, "target": "target"},
        "gate": {"min_accuracy": 0.9},
    }
    data.update(overrides)
    return validate_config(data, "test")


def synthetic_config(rows: int = 2_000, **overrides: Any) -> PipelineConfig:
    data: dict[str, Any] = {
        "name": "unit-synthetic",
        "seed": 5,
        "data": {
            "source": {
                "kind": "synthetic",
                "rows": rows,
                "numeric_features": 6,
                "categorical_features": 2,
            },
            "target": "label",
        },
    }
    data.update(overrides)
    return validate_config(data, "test")
