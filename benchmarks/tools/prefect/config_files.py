"""Config files as the Prefect adapter needs them: resolved against the ORCHBENCH_HOME
the tool processes get, or as written (relative storage paths) for deployment parameters."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from benchmarks.environments import tool_env
from shared_ml.config import PipelineConfig, load_config


@contextlib.contextmanager
def _orchbench_home() -> Iterator[None]:
    """Resolve configs against the same ORCHBENCH_HOME the tool processes get."""
    previous = os.environ.get("ORCHBENCH_HOME")
    os.environ["ORCHBENCH_HOME"] = tool_env()["ORCHBENCH_HOME"]
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("ORCHBENCH_HOME", None)
        else:
            os.environ["ORCHBENCH_HOME"] = previous


def load_resolved_config(config_path: Path | str, seed: int | None = None) -> PipelineConfig:
    with _orchbench_home():
        return load_config(config_path, seed=seed)


def raw_config(config_path: Path | str, seed: int | None = None) -> dict[str, Any]:
    """The config as written (storage paths relative), for a deployment's parameters."""
    load_resolved_config(config_path, seed)  # validate first
    text = Path(config_path).read_text(encoding="utf-8")
    data = (json.loads(text) if str(config_path).endswith(".json") else yaml.safe_load(text)) or {}
    if seed is not None:
        data["seed"] = seed
    return data
