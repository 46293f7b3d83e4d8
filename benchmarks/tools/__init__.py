"""Adapters, one per tool, loaded lazily so the CLI starts fast."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from benchmarks.tools.base import ToolAdapter

ADAPTERS = {
    "local": "benchmarks.tools.local:LocalAdapter",
    "airflow": "benchmarks.tools.airflow.adapter:AirflowAdapter",
    "prefect": "benchmarks.tools.prefect.adapter:PrefectAdapter",
    "kubeflow": "benchmarks.tools.kubeflow.adapter:KubeflowAdapter",
}
TOOLS = tuple(ADAPTERS)


def get_adapter(tool: str, **kwargs: Any) -> ToolAdapter:
    if tool not in ADAPTERS:
        raise ValueError(f"unknown tool {tool!r}; expected one of {', '.join(TOOLS)}")
    module, cls = ADAPTERS[tool].split(":")
    return getattr(import_module(module), cls)(**kwargs)
