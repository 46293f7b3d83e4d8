"""Config files as the Prefect adapter needs them: resolved against the ORCHBENCH_HOME
the tool processes get, or as written (relative storage paths) for deployment parameters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from benchmarks.environments import orchbench_home_set, tool_env
from shared_ml.config import PipelineConfig, load_config


def load_resolved_config(config_path: Path | str, seed: int | None = None) -> PipelineConfig:
    with orchbench_home_set(tool_env()["ORCHBENCH_HOME"]):
        return load_config(config_path, seed=seed)


def raw_config(config_path: Path | str, seed: int | None = None) -> dict[str, Any]:
    """The config as written (storage paths relative), for a deployment's parameters."""
    load_resolved_config(config_path, seed)  # validate first
    text = Path(config_path).read_text(encoding="utf-8")
    data = (json.loads(text) if str(config_path).endswith(".json") else yaml.safe_load(text)) or {}
    if seed is not None:
        data["seed"] = seed
    return data
