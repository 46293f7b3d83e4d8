"""What a fake cluster pod writes in the adapters' cluster tests: the ``select`` step's
record on the store the config names, as a real step pod would after its work."""

from __future__ import annotations

from datetime import UTC, datetime

from shared_ml.records import StepRecord, write_step_record


def write_select_record(
    runs_root: str, run_id: str, f1: float, prediction_hash: str, selected: str
) -> None:
    now = datetime.now(UTC)
    select = StepRecord(
        step="select",
        attempt=1,
        started_at=now,
        ended_at=now,
        duration_s=0.0,
        outcome="success",
        metadata={"metrics": {"f1": f1}, "prediction_hash": prediction_hash, "selected": selected},
    )
    write_step_record(runs_root, run_id, select)
