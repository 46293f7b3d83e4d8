"""In-tool metadata, as Airflow users expect it: the registered model is an Airflow asset.

The ``register`` task of ``orchbench_ml`` declares ``model_asset`` as its outlet. Each time
it succeeds, Airflow records an asset event whose ``extra`` says what was registered: the
selected candidate and its metrics, every candidate's ranking, the registry version and its
promotion decision, and where the model is (URI and digest). The event names its source
DAG run and task, so it links the model back to the run that made it.

Where to see it: the UI's Assets page (``orchbench_registered_model``) and the run's
"Asset Events" tab; the REST API ``GET /api/v2/assets/events?source_run_id=<run id>``.
The ``orchbench_model_report`` DAG (in ``pipeline.py``) is scheduled on this asset: every
registration event starts a run of it (when the services run with schedules on).

Kept free of DAG objects (listed in ``.airflowignore``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import Asset

from shared_ml.config import PipelineConfig
from shared_ml.registry import ModelRegistry

MODEL_ASSET_NAME = "orchbench_registered_model"
# One asset for the registry's models; which registry and version is in each event's extra.
MODEL_ASSET_URI = "x-orchbench://registry/models"

# The downstream DAG scheduled on the model asset (defined in pipeline.py).
REPORT_DAG_ID = "orchbench_model_report"

model_asset = Asset(name=MODEL_ASSET_NAME, uri=MODEL_ASSET_URI, group="orchbench")


def registered_model_extra(
    config: PipelineConfig,
    run_id: str,
    selected: Mapping[str, Any],
    registered: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``extra`` of the model asset's event: ``selected`` is the ``select`` step's
    result, ``registered`` the ``register`` step's (``{"outputs", "metadata"}`` each)."""
    choice = selected["metadata"]
    registration = registered["metadata"]["registration"]
    registry = ModelRegistry(config.storage.registry_root, config.name)
    version = registry.version(registration["version"]) or {}
    return {
        "run_id": run_id,
        "logical_date": config.logical_date.isoformat() if config.logical_date else None,
        "selected_candidate": choice["selected"],
        "primary_metric": choice["primary_metric"],
        "metrics": dict(choice["metrics"]),
        "gate_passed": choice["gate_passed"],
        "prediction_hash": choice["prediction_hash"],
        "candidates": [dict(row) for row in choice["candidates"]],
        "registry": config.name,
        "version": registration["version"],
        "promoted": registration["promoted"],
        "reason": registration["reason"],
        "champion_version": registration["champion_version"],
        "already_registered": registration["already_registered"],
        "model_uri": version.get("model_uri"),
        "model_digest": version.get("model_digest"),
    }


def report_lines(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per registration event (the report DAG's log and return value)."""
    lines = []
    for extra in events:
        primary = extra.get("primary_metric", "f1")
        score = (extra.get("metrics") or {}).get(primary)
        lines.append(
            f"{extra.get('registry')} v{extra.get('version')} ({extra.get('selected_candidate')}) "
            f"from run {extra.get('run_id')}: {primary}="
            + (f"{score:.4f}" if isinstance(score, int | float) else "-")
            + f", {'promoted' if extra.get('promoted') else 'not promoted'} "
            f"({extra.get('reason')}); champion v{extra.get('champion_version')}; "
            f"model {extra.get('model_uri')}"
        )
    return lines
