"""Run ids and the run record written at the end of every flow run.

The orchbench adapter rebuilds the record with Prefect's own task timings; writing it
here too means runs started by a schedule, an event or the UI leave a record as well.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared_ml.config import PipelineConfig
from shared_ml.records import collect_run_record, read_step_records, write_run_record
from shared_ml.spec import PIPELINE

TOOL = "prefect"


def run_id_for(run_id: str | None, flow_run_id: UUID | str | None) -> str:
    """The orchbench run id of a flow run: the one given, else ``prefect-<flow run id>``."""
    if run_id:
        return run_id
    if not flow_run_id:
        raise ValueError("no run_id given and no flow run context to derive one from")
    return f"prefect-{flow_run_id}"


def finish_run_record(
    config: PipelineConfig, run_id: str, *, status: str, details: dict[str, Any]
) -> None:
    record = collect_run_record(
        runs_root=config.storage.runs_root,
        run_id=run_id,
        tool=TOOL,
        pipeline=PIPELINE.name,
        config_fingerprint=config.ml_fingerprint(),
        seed=config.seed,
        status=status,  # type: ignore[arg-type]
        partition=config.partition,
        tool_packages=("prefect",),
        tool_details=details,
    )
    write_run_record(config.storage.runs_root, record)


def failed_step(runs_root: str, run_id: str) -> tuple[str | None, str | None]:
    """The task (``train[forest]`` for a branch) whose latest attempt failed, and its
    error message, from the step records."""
    failures = [r for r in read_step_records(runs_root, run_id) if r.outcome == "failed"]
    if not failures:
        return None, None
    last = failures[-1]
    return last.key, (f"{last.error.type}: {last.error.message}" if last.error else None)


def running_steps(runs_root: str, run_id: str) -> list[str]:
    """The tasks whose latest attempt never recorded its end (its process died)."""
    latest = {r.key: r for r in read_step_records(runs_root, run_id)}  # sorted by start
    return [key for key, record in latest.items() if record.outcome == "running"]
