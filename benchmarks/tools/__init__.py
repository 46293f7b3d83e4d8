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


# Tools with more than one execution path: the default (what the benchmark measures,
# the tool's production path) first. A path is the adapter's ``mode`` argument.
PATHS = {"prefect": ("deployment", "in-process")}


def check_path(tool: str, path: str) -> None:
    """Refuse a path the tool does not have, naming the ones it has."""
    if path not in PATHS.get(tool, ()):
        have = PATHS.get(tool)
        raise ValueError(
            f"--path {path!r} for {tool}: expected one of {', '.join(have)}"
            if have
            else f"--path {path!r}: {tool} has one execution path; only "
            + ", ".join(PATHS)
            + " can choose"
        )


def get_adapter(tool: str, *, path: str | None = None, **kwargs: Any) -> ToolAdapter:
    """The tool's adapter; ``path`` picks a non-default execution path (``PATHS``)."""
    if tool not in ADAPTERS:
        raise ValueError(f"unknown tool {tool!r}; expected one of {', '.join(TOOLS)}")
    if path is not None:
        check_path(tool, path)
        kwargs["mode"] = path
    module, cls = ADAPTERS[tool].split(":")
    return getattr(import_module(module), cls)(**kwargs)
