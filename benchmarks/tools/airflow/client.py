"""A small client for Airflow 3's REST API v2, over httpx.

Authentication: ``POST /auth/token`` with the simple auth manager's admin password (read
from ``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``) returns a JWT that
every other call sends as a bearer token; on a 401 the token is fetched again once.
Every non-2xx answer raises ``AirflowApiError`` naming the method, endpoint, status and
the start of the body.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.tools.airflow.api_errors import AirflowApiError, AirflowTimeout, parse_time
from benchmarks.tools.airflow.client_backfills import BackfillCalls
from benchmarks.tools.airflow.services import admin_password

__all__ = ["AirflowApiError", "AirflowClient", "AirflowTimeout", "TaskTry", "parse_time"]

WATCHDOG_EVERY_S = 5.0
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
TERMINAL_TASK_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


@dataclass
class TaskTry:
    """One try of one task instance, as the API reports it."""

    task_id: str
    try_number: int
    state: str | None
    queued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    pid: int | None
    map_index: int = -1  # -1: not mapped
    rendered_map_index: str | None = None  # the map index's label (the ML DAG: candidate)

    @property
    def key(self) -> str:
        """``train[logreg]`` for a mapped task instance (its label, else its index), else
        the task id: the spec's task key, for the ML DAG."""
        if self.map_index < 0:
            return self.task_id
        return f"{self.task_id}[{self.rendered_map_index or self.map_index}]"

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> TaskTry:
        return cls(
            map_index=item.get("map_index", -1),
            rendered_map_index=item.get("rendered_map_index"),
            task_id=item["task_id"],
            try_number=item["try_number"],
            state=item.get("state"),
            queued_at=parse_time(item.get("queued_when")),
            started_at=parse_time(item.get("start_date")),
            ended_at=parse_time(item.get("end_date")),
            duration_s=item.get("duration"),
            pid=item.get("pid"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "map_index": self.map_index,
            "key": self.key,
            "try_number": self.try_number,
            "state": self.state,
            "queued_at": self.queued_at.isoformat() if self.queued_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "duration_s": self.duration_s,
        }


class AirflowClient(BackfillCalls):
    def __init__(
        self,
        url: str,
        *,
        username: str = "admin",
        password: str | None = None,
        airflow_home: Path | None = None,
        timeout_s: float = 30.0,
        watchdog: Callable[[], None] | None = None,
    ) -> None:
        """``watchdog`` is called every ``WATCHDOG_EVERY_S`` while a ``wait_until`` waits:
        the adapter's check that the services it waits on are still there."""
        if password is None and airflow_home is None:
            raise ValueError("AirflowClient needs a password or the AIRFLOW_HOME to read it from")
        self.url = url.rstrip("/")
        self.username = username
        self._password = password
        self._home = airflow_home
        self._token: str | None = None
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s, trust_env=False)
        self._watchdog = watchdog
        self._watched_at = time.monotonic()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AirflowClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------
    def token(self, refresh: bool = False) -> str:
        if self._token is None or refresh:
            password = self._password or admin_password(self._home)  # type: ignore[arg-type]
            response = self._http.post(
                "/auth/token", json={"username": self.username, "password": password}
            )
            self._check(response, "POST", "/auth/token")
            self._token = response.json()["access_token"]
        return self._token

    @staticmethod
    def _check(response: httpx.Response, method: str, endpoint: str) -> None:
        if response.is_success:
            return
        raise AirflowApiError(method, endpoint, response.status_code, response.text)

    def request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        """Call ``/api/v2{endpoint}``; return the decoded JSON (None for 204)."""
        path = f"/api/v2{endpoint}"
        headers = dict(kwargs.pop("headers", None) or {})
        try:
            response = self._http.request(
                method,
                path,
                headers={**headers, "Authorization": f"Bearer {self.token()}"},
                **kwargs,
            )
            if response.status_code == 401:  # expired token: fetch a new one, once
                response = self._http.request(
                    method,
                    path,
                    headers={**headers, "Authorization": f"Bearer {self.token(refresh=True)}"},
                    **kwargs,
                )
        except httpx.HTTPError as err:
            raise AirflowApiError(method, path, 0, f"{type(err).__name__}: {err}") from err
        self._check(response, method, path)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise AirflowApiError(
                method, path, response.status_code, f"not JSON: {response.text}"
            ) from None

    def _paged(self, endpoint: str, key: str, params: dict[str, Any] | None = None) -> list:
        items: list = []
        params = dict(params or {})
        while True:
            page = self.request(
                "GET", endpoint, params={**params, "offset": len(items), "limit": 100}
            )
            items.extend(page[key])
            if not page[key] or len(items) >= page.get("total_entries", len(items)):
                return items

    def wait_until(
        self, check: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.5
    ) -> Any:
        """Call ``check`` until it returns something truthy; raise AirflowTimeout after
        ``timeout_s`` naming ``what``."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AirflowTimeout(f"timed out after {timeout_s:.0f} s waiting for {what}")
            if self._watchdog and time.monotonic() - self._watched_at >= WATCHDOG_EVERY_S:
                self._watchdog()
                self._watched_at = time.monotonic()
            time.sleep(interval_s)

    # --- DAGs ---------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        response = self._http.get("/api/v2/monitor/health")
        self._check(response, "GET", "/api/v2/monitor/health")
        return response.json()

    def dag(self, dag_id: str) -> dict[str, Any]:
        return self.request("GET", f"/dags/{dag_id}")

    def import_errors(self) -> list[dict[str, Any]]:
        return self._paged("/importErrors", "import_errors")

    def wait_for_dag(self, dag_id: str, timeout_s: float = 180.0) -> dict[str, Any]:
        """Wait until the dag-processor has parsed and stored ``dag_id``. An import error
        in any DAG file fails at once with the error text."""

        def parsed() -> dict[str, Any] | None:
            try:
                return self.dag(dag_id)
            except AirflowApiError as err:
                if err.status != 404:
                    raise
            errors = self.import_errors()
            if errors:
                detail = "; ".join(f"{e['filename']}: {e['stack_trace'][-400:]}" for e in errors)
                raise AirflowApiError("GET", "/api/v2/importErrors", 200, detail)
            return None

        return self.wait_until(parsed, timeout_s, f"DAG {dag_id!r} to be parsed", 1.0)

    def set_paused(self, dag_id: str, paused: bool) -> dict[str, Any]:
        return self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    # --- runs ---------------------------------------------------------------------------
    def trigger(
        self,
        dag_id: str,
        *,
        run_id: str | None = None,
        conf: dict[str, Any] | None = None,
        logical_date: datetime | None = None,
        data_interval: tuple[datetime, datetime] | None = None,
    ) -> dict[str, Any]:
        """Create a run. Without ``data_interval`` Airflow infers one from the logical date
        and the timetable (a data-interval timetable: the last complete interval before it)."""
        body: dict[str, Any] = {
            "logical_date": logical_date.isoformat() if logical_date else None,
            "conf": conf or {},
        }
        if data_interval is not None:
            body["data_interval_start"] = data_interval[0].isoformat()
            body["data_interval_end"] = data_interval[1].isoformat()
        if not run_id:
            return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)
        body["dag_run_id"] = run_id

        def created() -> dict[str, Any] | None:
            try:
                return self.dag_run(dag_id, run_id)
            except AirflowApiError as err:
                if err.status == 404:
                    return None
                raise

        return self._ride_out_busy_db(
            lambda: self.request("POST", f"/dags/{dag_id}/dagRuns", json=body),
            already_done=created,
        )

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def dag_runs(self, dag_id: str, **filters: Any) -> list[dict[str, Any]]:
        return self._paged(f"/dags/{dag_id}/dagRuns", "dag_runs", filters)

    def wait_for_run(
        self, dag_id: str, run_id: str, timeout_s: float = 600.0, interval_s: float = 0.5
    ) -> dict[str, Any]:
        """Poll until the run is success or failed; return the run."""

        def finished() -> dict[str, Any] | None:
            try:
                run = self.dag_run(dag_id, run_id)
            except AirflowApiError as err:
                # The api-server is restarting (no answer, or 5xx while it comes up): the
                # run goes on in the scheduler, so keep polling until the timeout.
                if err.status == 0 or err.status >= 500:
                    return None
                raise
            return run if run["state"] in TERMINAL_RUN_STATES else None

        return self.wait_until(finished, timeout_s, f"run {dag_id}/{run_id} to finish", interval_s)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self._paged(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances")

    def task_tries(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1
    ) -> list[TaskTry]:
        """Every try of one task instance (earlier tries from the history table, plus the
        latest); ``map_index`` picks one instance of a mapped task."""
        instance = f"{task_id}/{map_index}" if map_index >= 0 else task_id
        items = self._paged(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{instance}/tries", "task_instances"
        )
        return sorted((TaskTry.from_api(i) for i in items), key=lambda t: t.try_number)

    def run_tries(self, dag_id: str, run_id: str) -> list[TaskTry]:
        """Every try of every task of a run; the latest try from the task instance list."""
        tries: list[TaskTry] = []
        for ti in self.task_instances(dag_id, run_id):
            latest = TaskTry.from_api(ti)
            earlier = []
            if ti["try_number"] > 1:
                earlier = [
                    t
                    for t in self.task_tries(dag_id, run_id, ti["task_id"], latest.map_index)
                    if t.try_number < latest.try_number
                ]
                for t in earlier:  # the history rows may lack the label
                    t.rendered_map_index = t.rendered_map_index or latest.rendered_map_index
            tries.extend([*earlier, latest])
        return sorted(
            tries, key=lambda t: (t.started_at or datetime.max.replace(tzinfo=UTC), t.key)
        )

    def clear_failed_tasks(
        self, dag_id: str, run_id: str, task_ids: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Clear the failed task instances of one run (and what depends on them), so the
        scheduler runs them again; upstream successes are kept."""
        body: dict[str, Any] = {
            "dry_run": False,
            "dag_run_id": run_id,
            "only_failed": True,
            "include_downstream": True,
            "include_upstream": False,
            "reset_dag_runs": True,
        }
        if task_ids:
            body["task_ids"] = task_ids
        result = self.request("POST", f"/dags/{dag_id}/clearTaskInstances", json=body)
        return result.get("task_instances", []) if result else []

    # --- variables ----------------------------------------------------------------------
    def set_variable(self, key: str, value: str) -> None:
        try:
            self.request("PATCH", f"/variables/{key}", json={"key": key, "value": value})
        except AirflowApiError as err:
            if err.status != 404:
                raise
            self.request("POST", "/variables", json={"key": key, "value": value})

    def delete_variable(self, key: str) -> None:
        try:
            self.request("DELETE", f"/variables/{key}")
        except AirflowApiError as err:
            if err.status != 404:
                raise

    # --- assets -------------------------------------------------------------------------
    def asset_by_name(self, name: str) -> dict[str, Any]:
        assets = self._paged("/assets", "assets", {"name_pattern": name})
        exact = [a for a in assets if a["name"] == name]
        if not exact:
            raise AirflowApiError("GET", "/api/v2/assets", 404, f"no asset named {name!r}")
        return exact[0]

    def asset_events(self, **filters: Any) -> list[dict[str, Any]]:
        """Asset events, oldest first; ``filters`` as the API takes them (``asset_id``,
        ``source_dag_id``, ``source_run_id``, ``source_task_id``...)."""
        return self._paged("/assets/events", "asset_events", {**filters, "order_by": "timestamp"})

    def create_asset_event(self, asset_id: int, extra: dict[str, Any] | None = None) -> dict:
        return self.request(
            "POST", "/assets/events", json={"asset_id": asset_id, "extra": extra or {}}
        )

    @staticmethod
    def _ride_out_busy_db(
        call: Callable[[], Any],
        already_done: Callable[[], Any] | None = None,
        timeout_s: float = 120.0,
    ) -> Any:
        """Call ``call``, again while the API answers "database busy".

        On SQLite the API answers 503 ("Database is locked") or 500 ("Database error") when
        the scheduler holds the write lock at that moment. A failed write may or may not
        have committed, so before trying again ``already_done()`` looks for its result.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return call()
            except AirflowApiError as err:
                busy = err.status == 503 or (err.status == 500 and "Database error" in err.body)
                if not busy or time.monotonic() > deadline:
                    raise
            time.sleep(1.0)
            existing = already_done() if already_done else None
            if existing:
                return existing
