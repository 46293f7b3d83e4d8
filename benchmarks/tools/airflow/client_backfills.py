"""The backfill calls of the Airflow REST client (``/backfills``), as a part of
``AirflowClient``: create, dry-run, cancel and wait, riding out SQLite's busy answers."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any

from benchmarks.tools.airflow.api_errors import AirflowApiError, AirflowTimeout, parse_time

# POST /backfills answered "already a running backfill": how many times to wait and ask.
RUNNING_BACKFILL_RETRIES = 4


def _at(value: date | datetime, end_of_day: bool = False) -> datetime:
    """A date as the UTC datetime at its start (or its last microsecond); datetimes pass."""
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, dtime.max if end_of_day else dtime.min, tzinfo=UTC)


class BackfillCalls:
    """Uses the client's ``request``, ``_paged``, ``wait_until``, ``dag_runs`` and
    ``_ride_out_busy_db``."""

    def run_backfill(
        self,
        dag_id: str,
        from_date: date | datetime,
        to_date: date | datetime,
        *,
        conf: dict[str, Any] | None = None,
        reprocess_behavior: str = "none",
        max_active_runs: int = 1,
        timeout_s: float = 900.0,
    ) -> list[dict[str, Any]]:
        """Backfill a range and wait until every date Airflow planned for it has run.

        Airflow commits the backfill first and then its runs one date at a time on SQLite
        (each date is its own savepoint there). A lock error part-way through answers 503
        but can leave a backfill that covers only the first dates. Such a backfill is
        waited for (or cancelled if it queued nothing), and a follow-up backfill covers
        the dates it missed. Returns every backfill made, the first one first.
        """
        deadline = time.monotonic() + timeout_s
        body = {
            "dag_id": dag_id,
            "from_date": _at(from_date).isoformat(),
            "to_date": _at(to_date, end_of_day=True).isoformat(),
            "run_backwards": False,
            "dag_run_conf": conf or {},
            "reprocess_behavior": reprocess_behavior,
            "max_active_runs": max_active_runs,
        }
        planned = set(self.backfill_dry_run(body))
        made: list[dict[str, Any]] = []
        while True:
            backfill, whole = self._create_backfill(body)
            made.append(backfill)
            remaining_s = max(1.0, deadline - time.monotonic())
            if whole:
                self.wait_for_backfill(backfill["id"], remaining_s)
                return made
            if self._dates_queued_since(dag_id, backfill):
                self.wait_for_backfill(backfill["id"], remaining_s)
            else:
                self.cancel_backfill(backfill["id"])  # it queued no run: nothing to wait for
            # Read after the wait: Airflow's clean-up may have deleted the backfill, and its
            # runs with it, while it was waited for.
            queued = self._dates_queued_since(dag_id, backfill)
            start = parse_time(body["from_date"])
            missing = sorted(d for d in planned if d not in queued and d >= start)  # type: ignore[operator]
            if not missing:
                return made
            if time.monotonic() > deadline:
                raise AirflowTimeout(
                    f"backfill of {dag_id}: dates {[d.isoformat() for d in missing]} were "
                    f"still not queued after {timeout_s:.0f} s"
                )
            body = {**body, "from_date": missing[0].isoformat()}

    def backfill_dry_run(self, body: dict[str, Any]) -> list[datetime]:
        """The logical dates that the backfill ``body`` (of POST /backfills) would run now."""
        answer = self._ride_out_busy_db(
            lambda: self.request("POST", "/backfills/dry_run", json=body)
        )
        return [
            parse_time(b["logical_date"])  # type: ignore[misc]
            for b in answer["backfills"]
            if b.get("logical_date")
        ]

    def cancel_backfill(self, backfill_id: int) -> None:
        try:
            self._ride_out_busy_db(lambda: self.request("PUT", f"/backfills/{backfill_id}/cancel"))
        except AirflowApiError as err:
            # 409: already completed. 404: gone: when a lock error cuts the creation of its
            # runs short, Airflow deletes the backfill it had committed (best effort, so
            # it may also stay, queued runs or not); the follow-up backfill covers its dates.
            if err.status not in (404, 409):
                raise

    def _dates_queued_since(self, dag_id: str, backfill: dict[str, Any]) -> set[datetime]:
        """Logical dates whose run was queued (created or cleared) after ``backfill``
        was created: the dates that backfill took on."""
        since = parse_time(backfill["created_at"])
        return {
            parse_time(r["logical_date"])  # type: ignore[misc]
            for r in self.dag_runs(dag_id, run_type=["backfill"])
            if r.get("logical_date") and r.get("queued_at")
            if parse_time(r["queued_at"]) >= since  # type: ignore[operator]
        }

    def _create_backfill(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """POST one backfill; return it and whether Airflow confirmed creating all of it."""
        dag_id = body["dag_id"]
        before = {b["id"] for b in self.backfills(dag_id)}

        def created() -> dict[str, Any] | None:
            new = [b for b in self.backfills(dag_id) if b["id"] not in before]
            return new[0] if new else None

        confirmed: list[bool] = []

        def create() -> dict[str, Any]:
            # Airflow runs one backfill per DAG at a time, and marks one completed a
            # scheduler loop after its last run ended: wait for it, then ask again. Once
            # was not always enough (a CLI backfill right after another got a second 409
            # after the wait), so ask a few times, each after a wait.
            for attempt in range(1, RUNNING_BACKFILL_RETRIES + 1):
                try:
                    backfill = self.request("POST", "/backfills", json=body)
                    break
                except AirflowApiError as err:
                    already = err.status == 409 and "already a running backfill" in err.body
                    # The running one may be ours: an earlier POST that answered "busy"
                    # had committed, though the listing did not show it yet.
                    mine = created() if already else None
                    if mine:
                        return mine
                    if not already or attempt == RUNNING_BACKFILL_RETRIES:
                        raise
                    self._wait_for_running_backfills(dag_id)
                    time.sleep(attempt)  # a scheduler loop, to settle what it just completed
            confirmed.append(True)
            return backfill

        backfill = self._ride_out_busy_db(create, already_done=created)
        return backfill, bool(confirmed)

    def _wait_for_running_backfills(self, dag_id: str, timeout_s: float = 300.0) -> None:
        for running in [b for b in self.backfills(dag_id) if not b.get("completed_at")]:
            self.wait_for_backfill(running["id"], timeout_s)

    def backfills(self, dag_id: str) -> list[dict[str, Any]]:
        return self._paged("/backfills", "backfills", {"dag_id": dag_id})

    def backfill(self, backfill_id: int) -> dict[str, Any]:
        return self.request("GET", f"/backfills/{backfill_id}")

    def wait_for_backfill(
        self, backfill_id: int, timeout_s: float = 900.0, interval_s: float = 1.0
    ) -> dict[str, Any] | None:
        """Wait until the backfill is completed and return it; None if it is gone (Airflow
        deletes a backfill whose creation a lock error cut short, runs and all, best effort
        and so sometimes after answering, while it is already listed)."""

        def completed() -> dict[str, Any] | bool | None:
            try:
                backfill = self.backfill(backfill_id)
            except AirflowApiError as err:
                if err.status == 404:
                    return True
                raise
            return backfill if backfill.get("completed_at") else None

        done = self.wait_until(completed, timeout_s, f"backfill {backfill_id}", interval_s)
        return done if isinstance(done, dict) else None
