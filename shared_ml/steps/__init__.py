"""The pipeline steps: plain functions, one verb per module, no orchestrator imports.

Every step takes the typed config plus the artifact URIs it consumes, writes its outputs
to the content-addressed store, and returns a ``StepOutput`` of URIs and small metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StepOutput:
    outputs: dict[str, str]
    metadata: dict[str, Any] = field(default_factory=dict)
