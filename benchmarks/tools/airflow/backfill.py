"""Backfills by partition through Airflow's own backfill API, as a part of the adapter."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.tools.airflow.client import AirflowClient, parse_time
from benchmarks.tools.airflow.dags import ML_DAG_ID, RUN_TIMEOUT_S
from benchmarks.tools.airflow.runs import contiguous_ranges
from benchmarks.tools.base import BackfillNotSupported
from shared_ml.records import RunRecord


class Backfills:
    """``AirflowAdapter.backfill``; uses the adapter's ``_running``, ``_load_config``,
    ``_conf``, ``_record`` and ``report_backfill_progress``."""

    def backfill(self, config_path: Path, dates: list[date]) -> list[RunRecord]:
        """Airflow backfills of ``dates``, one per range of consecutive days, one run at a
        time in date order (each date's promotion decision sees the earlier dates' models).

        The DAG's timetable decides the runs: with a daily schedule there is one per date,
        whose logical date picks that day's partition. A schedule that plans any other
        number of runs for a date is refused before anything runs. Dates that ran before
        are run again (``reprocess_behavior="completed"``, the same Airflow run ids):
        registration and the artifact store are idempotent, so that adds nothing.
        """
        if not dates:
            return []
        with self._running() as client:
            config = self._load_config(config_path, None)
            conf = self._conf(config_path, config, None, None)  # by value on a cluster
            client.wait_for_dag(ML_DAG_ID)
            ranges = contiguous_ranges(dates)
            for first, last in ranges:  # a schedule that does not fit: refused before any run
                self._check_one_run_per_date(client, first, last, conf)
            records: list[RunRecord] = []
            for first, last in ranges:
                client.run_backfill(
                    ML_DAG_ID,
                    first,
                    last,
                    conf=conf,
                    reprocess_behavior="completed",
                    max_active_runs=1,
                    timeout_s=RUN_TIMEOUT_S * ((last - first).days + 1),
                )
                by_date = {
                    parse_time(r["logical_date"]).astimezone(UTC).date(): r  # type: ignore[union-attr]
                    for r in client.dag_runs(ML_DAG_ID, run_type=["backfill"])
                    if r.get("logical_date")
                }
                for n in range((last - first).days + 1):
                    day = first + timedelta(days=n)
                    records.append(self._record(client, config, by_date[day], None))
                    self.report_backfill_progress(day, records[-1])
            return records

    @staticmethod
    def _check_one_run_per_date(
        client: AirflowClient, first: date, last: date, conf: dict[str, Any]
    ) -> None:
        planned = client.backfill_dry_run(
            {
                "dag_id": ML_DAG_ID,
                "from_date": datetime.combine(first, datetime.min.time(), UTC).isoformat(),
                "to_date": datetime.combine(last, datetime.max.time(), UTC).isoformat(),
                "run_backwards": False,
                "dag_run_conf": conf,
                "reprocess_behavior": "completed",
                "max_active_runs": 1,
            }
        )
        days = [p.astimezone(UTC).date() for p in planned]
        wanted = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        if sorted(days) != wanted:
            raise BackfillNotSupported(
                f"the {ML_DAG_ID} DAG's schedule plans runs for {[d.isoformat() for d in days]} "
                f"between {first} and {last}; a backfill by partition needs one run per day "
                "(a daily schedule in the config the services parse, $ORCHBENCH_AIRFLOW_CONFIG)"
            )
