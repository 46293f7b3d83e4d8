"""A benchmark that can stop and go on: after every session, what was collected so far is
written to ``<report dir>/checkpoint.json``; ``orchbench bench --resume <report dir>``
runs the sessions that are left, with the same plan, and writes the report there.

Why: the full benchmark (every scenario, both databases, both profiles, five
repetitions) takes hours on a 2-core machine; an interrupted run should not lose them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from benchmarks.environments import REPO_ROOT
from benchmarks.harness.plan import CONFIG_PATH_FIELDS, Plan, PlanError, repo_relative
from benchmarks.harness.session import Collected

CHECKPOINT = "checkpoint.json"
CHECKPOINT_VERSION = 2  # 2: Plan.tune_sqlite (it changes the session order)
SessionKey = tuple[int, str, str]  # (repetition, profile, tool label)


@dataclass
class Checkpoint:
    plan: Plan
    collected: Collected = field(default_factory=Collected)
    done: list[SessionKey] = field(default_factory=list)
    created_at: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0  # of the sessions before this invocation


_ADAPTER = TypeAdapter(Checkpoint)


def save(folder: Path, checkpoint: Checkpoint) -> Path:
    """Write atomically (a temporary file, then rename): an interrupted write leaves the
    previous checkpoint whole."""
    path = folder / CHECKPOINT
    data = {"version": CHECKPOINT_VERSION, **_ADAPTER.dump_python(checkpoint, mode="json")}
    for name in CONFIG_PATH_FIELDS:  # relative: the resume may be in another checkout
        if data["plan"][name] is not None:
            data["plan"][name] = repo_relative(Path(data["plan"][name]))
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(data), encoding="utf-8")
    os.replace(temporary, path)
    return path


def load(folder: Path) -> Checkpoint:
    """The checkpoint of an interrupted benchmark in ``folder``; a clear PlanError when
    there is none or it cannot be read."""
    path = folder / CHECKPOINT
    if not path.is_file():
        finished = (folder / "results.json").is_file()
        raise PlanError(
            f"--resume {folder}: no {CHECKPOINT} there"
            + (" (that benchmark finished: its report is there)" if finished else "")
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise PlanError(f"--resume {folder}: {path.name} is unreadable ({err})") from None
    version = data.pop("version", None) if isinstance(data, dict) else None
    if version != CHECKPOINT_VERSION:
        raise PlanError(
            f"--resume {folder}: {path.name} has version {version!r}, this orchbench reads "
            f"{CHECKPOINT_VERSION}; start the benchmark again"
        )
    try:
        checkpoint = _ADAPTER.validate_python(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PlanError(
            f"--resume {folder}: {path.name} is invalid at {where}: {first['msg']}"
        ) from None
    checkpoint.done = [tuple(k) for k in checkpoint.done]  # type: ignore[misc]
    for name in CONFIG_PATH_FIELDS:  # this checkout's files (older checkpoints: absolute)
        path = getattr(checkpoint.plan, name)
        if path is not None and not path.is_absolute():
            setattr(checkpoint.plan, name, REPO_ROOT / path)
    return checkpoint
