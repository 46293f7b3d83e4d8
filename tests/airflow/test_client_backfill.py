"""The client's backfill against an API answering as Airflow 3.3 did on SQLite when a lock
error hit part-way through creating a backfill: 503, yet the backfill row and its first
dates were committed (seen in a test run's metadata DB: a reprocessing backfill of three
dates that held only the first two). The real-server path is in test_triggers.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from benchmarks.tools.airflow.client import AirflowApiError, AirflowClient

DAG = "orchbench_ml"
DATES = [datetime(2025, 1, d, 3, tzinfo=UTC) for d in (1, 2, 3)]
T0 = "2026-11-26T12:00:00Z"


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class PartialBackfillApi:
    """Enough of the REST API for run_backfill. With ``committed`` set, the first
    POST /backfills commits a backfill of only that many dates and answers 503."""

    def __init__(self, committed: int | None, hide_committed_once: bool = False) -> None:
        self.committed = committed
        self.hide_committed_once = hide_committed_once
        self.backfills: list[dict[str, Any]] = []
        self.queued_at = {d: T0 for d in DATES}  # every date ran before
        self.posts: list[dict[str, Any]] = []
        self.cancelled: list[int] = []
        self.clock = 0

    def now(self) -> str:
        self.clock += 1
        return f"2026-11-26T12:10:{self.clock:02d}Z"

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path == "/auth/token":
            return httpx.Response(201, json={"access_token": "t"})
        if path == "/api/v2/backfills/dry_run":
            return httpx.Response(
                200,
                json={
                    "backfills": [
                        {"logical_date": stamp(d), "partition_key": None, "partition_date": None}
                        for d in DATES
                    ],
                    "total_entries": len(DATES),
                },
            )
        if path == "/api/v2/backfills" and method == "GET":
            shown = self.backfills
            if self.hide_committed_once and self.posts:  # its commit not yet visible
                self.hide_committed_once, shown = False, self.backfills[:-1]
            return httpx.Response(200, json={"backfills": shown, "total_entries": len(shown)})
        if path == "/api/v2/backfills" and method == "POST":
            if any(b["completed_at"] is None for b in self.backfills):
                return httpx.Response(
                    409, json={"detail": f"There is already a running backfill for dag {DAG}"}
                )
            body = json.loads(request.content)
            self.posts.append(body)
            start = datetime.fromisoformat(body["from_date"])
            dates = [d for d in DATES if d >= start]
            backfill = {
                "id": len(self.backfills) + 1,
                "created_at": self.now(),
                "completed_at": None,
            }
            self.backfills.append(backfill)
            partial = self.committed is not None and len(self.posts) == 1
            for d in dates[: self.committed] if partial else dates:
                self.queued_at[d] = self.now()
            if partial:
                return httpx.Response(503, json={"detail": "Database is locked."})
            return httpx.Response(201, json=backfill)
        if path.startswith("/api/v2/backfills/") and path.endswith("/cancel"):
            backfill_id = int(path.split("/")[4])
            self.cancelled.append(backfill_id)
            self.backfills[backfill_id - 1]["completed_at"] = self.now()
            return httpx.Response(200, json=self.backfills[backfill_id - 1])
        if path.startswith("/api/v2/backfills/"):
            backfill = self.backfills[int(path.split("/")[4]) - 1]
            backfill["completed_at"] = backfill["completed_at"] or self.now()  # runs finish
            return httpx.Response(200, json=backfill)
        if path == f"/api/v2/dags/{DAG}/dagRuns":
            runs = [
                {"logical_date": stamp(d), "queued_at": q, "state": "success"}
                for d, q in self.queued_at.items()
            ]
            return httpx.Response(200, json={"dag_runs": runs, "total_entries": len(runs)})
        return httpx.Response(404, json={"detail": f"{method} {path}"})


def client_for(api: PartialBackfillApi) -> AirflowClient:
    client = AirflowClient("http://airflow.test", password="x")
    client._http = httpx.Client(
        base_url="http://airflow.test", transport=httpx.MockTransport(api.handle)
    )
    return client


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("benchmarks.tools.airflow.client.time.sleep", lambda s: None)


def test_a_backfill_cut_short_by_a_lock_error_is_completed_by_a_follow_up() -> None:
    api = PartialBackfillApi(committed=2)
    made = client_for(api).run_backfill(
        DAG, DATES[0].date(), DATES[-1].date(), reprocess_behavior="completed"
    )
    assert [b["id"] for b in made] == [1, 2]
    assert len(api.posts) == 2
    assert datetime.fromisoformat(api.posts[1]["from_date"]) == DATES[2]  # only what was missed
    assert api.posts[1]["to_date"] == api.posts[0]["to_date"]
    assert all(q != T0 for q in api.queued_at.values())  # every date was queued again
    assert api.cancelled == []


def test_a_backfill_that_queued_nothing_is_cancelled_and_made_again() -> None:
    api = PartialBackfillApi(committed=0)
    made = client_for(api).run_backfill(
        DAG, DATES[0].date(), DATES[-1].date(), reprocess_behavior="completed"
    )
    assert [b["id"] for b in made] == [1, 2]
    assert api.cancelled == [1]
    assert datetime.fromisoformat(api.posts[1]["from_date"]) == DATES[0]
    assert all(q != T0 for q in api.queued_at.values())


def test_a_complete_backfill_is_made_once() -> None:
    api = PartialBackfillApi(committed=None)
    made = client_for(api).run_backfill(DAG, DATES[0].date(), DATES[-1].date())
    assert [b["id"] for b in made] == [1]
    assert len(api.posts) == 1


def test_an_error_that_is_not_a_busy_database_is_raised() -> None:
    class Refusing(PartialBackfillApi):
        def handle(self, request: httpx.Request) -> httpx.Response:
            if request.url.path == "/api/v2/backfills" and request.method == "POST":
                return httpx.Response(409, json={"detail": "There is already a running backfill"})
            return super().handle(request)

    with pytest.raises(AirflowApiError, match="409"):
        client_for(Refusing(committed=None)).run_backfill(DAG, DATES[0].date(), DATES[-1].date())


def test_a_backfill_refused_as_already_running_is_asked_again_after_each_wait() -> None:
    """Seen with the real server: `orchbench backfill` just after another backfill of the
    DAG was answered 409 a second time after waiting for the running one."""

    class Busy(PartialBackfillApi):
        refusals = 2

        def handle(self, request: httpx.Request) -> httpx.Response:
            posting = request.url.path == "/api/v2/backfills" and request.method == "POST"
            if posting and self.refusals:
                self.refusals -= 1
                self.posts.append(json.loads(request.content))
                return httpx.Response(
                    409, json={"detail": f"There is already a running backfill for dag {DAG}"}
                )
            return super().handle(request)

    api = Busy(committed=None)
    made = client_for(api).run_backfill(DAG, DATES[0].date(), DATES[-1].date())
    assert [b["id"] for b in made] == [1]
    assert len(api.posts) == 3 and api.refusals == 0


def test_a_backfill_deleted_while_waited_for_is_made_again() -> None:
    """Airflow's clean-up after the lock error deletes the partial backfill and its runs
    best effort: it may still be listed when the client looks, then answer 404."""

    class Vanishing(PartialBackfillApi):
        def handle(self, request: httpx.Request) -> httpx.Response:
            if request.url.path == "/api/v2/backfills/1" and request.method == "GET":
                self.backfills[0]["completed_at"] = "deleted"  # no longer running
                for day in DATES[: self.committed]:  # its runs went with it
                    self.queued_at[day] = T0
                return httpx.Response(404, json={"detail": "Backfill not found"})
            return super().handle(request)

    api = Vanishing(committed=2)
    made = client_for(api).run_backfill(
        DAG, DATES[0].date(), DATES[-1].date(), reprocess_behavior="completed"
    )
    assert [b["id"] for b in made] == [1, 2]
    assert datetime.fromisoformat(api.posts[1]["from_date"]) == DATES[0]  # all of it again
    assert all(q != T0 for q in api.queued_at.values())


def test_a_409_from_our_own_backfill_committed_behind_a_busy_answer_is_not_an_error() -> None:
    # The first POST commits 2 dates and answers 503; the next listing does not show it
    # yet, so the retried POST meets it as "already a running backfill".
    api = PartialBackfillApi(committed=2, hide_committed_once=True)
    made = client_for(api).run_backfill(
        DAG, DATES[0].date(), DATES[-1].date(), reprocess_behavior="completed"
    )
    assert [b["id"] for b in made] == [1, 2]
    assert datetime.fromisoformat(api.posts[-1]["from_date"]) == DATES[2]
    assert all(q != T0 for q in api.queued_at.values())
