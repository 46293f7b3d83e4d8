"""shared_ml: the scikit-learn pipeline every orchestrator runs. Imports no orchestrator.

Names are imported lazily: DAG files and task processes that import ``shared_ml.spec``
must not pay for pandas and scikit-learn until a step actually runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "PIPELINE": "shared_ml.spec",
    "PipelineConfig": "shared_ml.config",
    "load_config": "shared_ml.config",
    "execute_step": "shared_ml.execution",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'shared_ml' has no attribute {name!r}")
