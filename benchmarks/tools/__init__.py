"""Adapters, one per tool, loaded lazily so the CLI starts fast."""

from __future__ import annotations

import os
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

# For --target cluster: where each tool's API is when --url is not given.
URL_ENV = {
    "airflow": "ORCHBENCH_AIRFLOW_URL",
    "prefect": "ORCHBENCH_PREFECT_URL",
    "kubeflow": "ORCHBENCH_KFP_URL",
}


def default_url(tool: str) -> str | None:
    variable = URL_ENV.get(tool)
    return os.environ.get(variable) if variable else None


def get_adapter(tool: str, **kwargs: Any) -> ToolAdapter:
    if tool not in ADAPTERS:
        raise ValueError(f"unknown tool {tool!r}; expected one of {', '.join(TOOLS)}")
    module, cls = ADAPTERS[tool].split(":")
    return getattr(import_module(module), cls)(**kwargs)
