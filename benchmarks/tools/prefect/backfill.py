"""Backfills by partition through the deployment, one flow run per date, as a part of
the adapter."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from benchmarks.tools.prefect.client import PrefectClient
from benchmarks.tools.prefect.paths import RUN_TIMEOUT_S
from shared_ml.records import RunRecord


class Backfills:
    """Uses the adapter's ``api_url``, ``pipeline_config``, ``_run_deployment``, ``_record``
    and ``report_backfill_progress``."""

    def backfill(self, config_path: Path, dates: list[date]) -> list[RunRecord]:
        """One deployment flow run per date, in date order, each scheduled at its date with
        that date as ``logical_date`` (so the champion history follows the dates, each run
        starts when the one before has ended). A date whose flow run already completed is
        not run again: its run id and idempotency key are fixed, so the server hands back
        the same flow run. A date whose last flow run failed gets a new flow run under
        the same run id, which resumes from the task cache."""
        config = self.pipeline_config(config_path)
        api_url = self.api_url()
        records = []
        for day in sorted(set(dates)):
            run_id = f"prefect-backfill-{day.isoformat()}-{config.ml_fingerprint()[:8]}"
            triggered = datetime.now(UTC)
            with PrefectClient(api_url) as client:
                # A flow run of this date still going (an earlier call): let it finish.
                earlier = [
                    client.wait_for_flow_run(r["id"], timeout_s=RUN_TIMEOUT_S)
                    for r in client.read_flow_runs(names=[run_id])
                ]
            done = [r["id"] for r in earlier if r["state"]["type"] == "COMPLETED"]
            flow_run_id = (
                done[0]
                if done
                else self._run_deployment(
                    config_path,
                    None,
                    run_id,
                    None,
                    api_url,
                    logical_date=day,
                    idempotency_key=f"orchbench-backfill/{run_id}/{len(earlier) + 1}",
                    backfill=True,
                )
            )
            extra = {"backfill": True, "reused_flow_run": bool(done)}
            record = self._record(config, run_id, flow_run_id, triggered, api_url, day, extra)
            self.report_backfill_progress(day, record)
            records.append(record)
        return records
