"""A small client of the Prefect 3 REST API (httpx), for the adapter and the tests.

Only what orchbench needs: deployments, flow runs (create from a deployment, read, wait),
task runs (states, run counts, timings, ``task_inputs``), logs, artifacts, events and work
pools. Every
non-2xx answer raises ``PrefectApiError`` naming the request and the server's detail.

Task runs of Prefect 3 are reported by the flow process as events and written by the
server asynchronously, so right after a flow run ends they may lag; ``wait_for_task_runs``
waits until every one of them is in a final state.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

TERMINAL_FLOW_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
FINAL_TASK_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})
# A task run whose upstream failed stays PENDING named "NotReady": final too, once the flow
# is. A plain "Pending" row is not: its Running and Completed events (which also carry the
# task_run_name the engine renames it to) may not be recorded yet.
UPSTREAM_FAILED_STATE = ("PENDING", "NotReady")


def task_run_is_final(task_run: dict[str, Any]) -> bool:
    state = task_run.get("state") or {}
    return (
        state.get("type") in FINAL_TASK_STATES
        or (state.get("type"), state.get("name")) == UPSTREAM_FAILED_STATE
    )


class PrefectApiError(RuntimeError):
    """The Prefect API refused a request or answered something unexpected."""

    def __init__(self, method: str, url: str, status: int | None, detail: str) -> None:
        self.method, self.url, self.status, self.detail = method, url, status, detail
        where = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"Prefect API {method} {url}: {where}: {detail}")


class PrefectTimeout(TimeoutError):
    pass


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _retry_after_s(response: httpx.Response) -> float | None:
    """A Retry-After header in seconds (the date form is not used by Prefect)."""
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


class PrefectClient:
    def __init__(self, api_url: str, timeout_s: float = 30.0) -> None:
        if not api_url.rstrip("/").endswith("/api"):
            raise ValueError(f"Prefect API URL {api_url!r}: expected it to end in /api")
        self.api_url = api_url.rstrip("/")
        self._http = httpx.Client(base_url=self.api_url, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PrefectClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing -----------------------------------------------------------------
    # With SQLite, the server answers 503 while another writer holds the database lock;
    # the request was not applied, so it is safe to send again. The same policy as
    # Prefect's own client (prefect.client.base; PREFECT_CLIENT_MAX_RETRIES=5): these
    # statuses, 5 retries, waiting 2**n s or the server's Retry-After, so that a busy
    # server is given as long as it would be on Prefect's production path.
    BUSY_STATUSES = frozenset({408, 429, 502, 503})
    BUSY_RETRY_DELAYS_S = (2.0, 4.0, 8.0, 16.0, 32.0)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.api_url}{path}"
        for delay in (*self.BUSY_RETRY_DELAYS_S, None):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.HTTPError as err:
                raise PrefectApiError(method, url, None, f"{type(err).__name__}: {err}") from None
            if response.status_code not in self.BUSY_STATUSES or delay is None:
                break
            time.sleep(_retry_after_s(response) or delay)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise PrefectApiError(method, url, response.status_code, str(detail)[:500])
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise PrefectApiError(
                method, url, response.status_code, f"not JSON: {response.text[:200]!r}"
            ) from None

    # --- server -------------------------------------------------------------------
    def healthy(self) -> bool:
        try:
            return self._request("GET", "/health") is True
        except PrefectApiError:
            return False

    def server_version(self) -> str:
        return str(self._request("GET", "/admin/version"))

    # --- deployments --------------------------------------------------------------
    def read_deployment(self, flow_name: str, deployment_name: str) -> dict[str, Any]:
        return self._request("GET", f"/deployments/name/{flow_name}/{deployment_name}")

    def delete_deployment(self, deployment_id: str) -> None:
        """Delete a deployment; the server deletes its scheduled (not yet started) runs."""
        self._request("DELETE", f"/deployments/{deployment_id}")

    def pause_deployment(self, deployment_id: str) -> None:
        """Deactivate its schedules; the server deletes its auto-scheduled runs not yet
        started."""
        self._request("POST", f"/deployments/{deployment_id}/pause_deployment")

    def read_deployment_schedules(self, deployment_id: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/deployments/{deployment_id}/schedules")

    def read_automations(self) -> list[dict[str, Any]]:
        return self._request("POST", "/automations/filter", json={})

    def create_flow_run_from_deployment(
        self,
        deployment_id: str,
        *,
        parameters: dict[str, Any] | None = None,
        name: str | None = None,
        idempotency_key: str | None = None,
        scheduled_time: datetime | None = None,
        tags: list[str] | None = None,
    ) -> dict[str, Any]:
        """Create a flow run (scheduled now, or at ``scheduled_time``); a worker runs it.

        With an ``idempotency_key`` the server returns the existing run for that key.
        """
        body: dict[str, Any] = {"parameters": parameters or {}, "tags": tags or []}
        if name:
            body["name"] = name
        if idempotency_key:
            body["idempotency_key"] = idempotency_key
        when = scheduled_time or datetime.now(UTC)
        body["state"] = {
            "type": "SCHEDULED",
            "state_details": {"scheduled_time": when.isoformat()},
        }
        return self._request("POST", f"/deployments/{deployment_id}/create_flow_run", json=body)

    # --- flow runs ----------------------------------------------------------------
    def read_flow_run(self, flow_run_id: str) -> dict[str, Any]:
        return self._request("GET", f"/flow_runs/{flow_run_id}")

    def read_flow_runs(
        self,
        *,
        deployment_id: str | None = None,
        names: list[str] | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        flow_runs: dict[str, Any] = {}
        if deployment_id:
            flow_runs["deployment_id"] = {"any_": [deployment_id]}
        if names:
            flow_runs["name"] = {"any_": names}
        body = {"flow_runs": flow_runs, "sort": "EXPECTED_START_TIME_DESC", "limit": limit}
        return self._request("POST", "/flow_runs/filter", json=body)

    def read_flow_run_states(self, flow_run_id: str) -> list[dict[str, Any]]:
        """The flow run's state history, oldest first (SCHEDULED, PENDING, RUNNING, ...)."""
        states = self._request("GET", "/flow_run_states/", params={"flow_run_id": flow_run_id})
        return sorted(states, key=lambda state: state["timestamp"])

    def wait_for_flow_run(
        self, flow_run_id: str, timeout_s: float = 300.0, poll_s: float = 0.25
    ) -> dict[str, Any]:
        """Poll until the flow run is in a terminal state; return it. A server that does
        not answer (restarting) is asked again until the deadline: the flow run goes on
        under the worker whether or not this client can see it."""
        deadline = time.monotonic() + timeout_s
        state: str | None = None
        while True:
            try:
                flow_run = self.read_flow_run(flow_run_id)
            except PrefectApiError as err:
                if err.status is not None or time.monotonic() > deadline:
                    raise
            else:
                state = (flow_run.get("state") or {}).get("type")
                if state in TERMINAL_FLOW_STATES:
                    return flow_run
            if time.monotonic() > deadline:
                raise PrefectTimeout(
                    f"flow run {flow_run_id} still {state} after {timeout_s:.0f} s"
                )
            time.sleep(poll_s)

    def wait_for_flow_run_state(
        self, flow_run_id: str, types: set[str], timeout_s: float, poll_s: float = 0.25
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            flow_run = self.read_flow_run(flow_run_id)
            state = (flow_run.get("state") or {}).get("type")
            if state in types:
                return flow_run
            if time.monotonic() > deadline:
                raise PrefectTimeout(
                    f"flow run {flow_run_id} is {state}, not in {sorted(types)}, "
                    f"after {timeout_s:.0f} s"
                )
            time.sleep(poll_s)

    # --- task runs ----------------------------------------------------------------
    def read_task_runs(self, flow_run_id: str) -> list[dict[str, Any]]:
        body = {
            "task_runs": {"flow_run_id": {"any_": [flow_run_id]}},
            "sort": "EXPECTED_START_TIME_ASC",
            "limit": 200,
        }
        return self._request("POST", "/task_runs/filter", json=body)

    def wait_for_task_runs(
        self,
        flow_run_id: str,
        *,
        expected: int | None = None,
        timeout_s: float = 60.0,
        poll_s: float = 0.25,
    ) -> list[dict[str, Any]]:
        """Task runs of a finished flow run, once the server has recorded all of them."""
        deadline = time.monotonic() + timeout_s
        while True:
            task_runs = self.read_task_runs(flow_run_id)
            enough = expected is None or len(task_runs) >= expected
            final = all(task_run_is_final(t) for t in task_runs)
            if task_runs and enough and final:
                return task_runs
            if time.monotonic() > deadline:
                states = {t["name"]: (t.get("state") or {}).get("name") for t in task_runs}
                raise PrefectTimeout(
                    f"task runs of flow run {flow_run_id} not all recorded after "
                    f"{timeout_s:.0f} s (expected {expected}, have {states})"
                )
            time.sleep(poll_s)

    def read_task_runs_named(self, flow_run_ids: list[str], name: str) -> list[dict[str, Any]]:
        """The task runs called ``name`` (``train[forest]``) in any of the flow runs."""
        body = {
            "task_runs": {"name": {"any_": [name]}},
            "flow_runs": {"id": {"any_": flow_run_ids}},
            "sort": "EXPECTED_START_TIME_ASC",
            "limit": 200,
        }
        return self._request("POST", "/task_runs/filter", json=body)

    # --- logs and artifacts ---------------------------------------------------------
    PAGE = 200  # the server's default (and largest) page size

    def read_logs(
        self, *, task_run_id: str | None = None, flow_run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every log line of a task run (or of a flow run), oldest first, from
        ``POST /logs/filter``, page after page."""
        logs: dict[str, Any] = {}
        if task_run_id:
            logs["task_run_id"] = {"any_": [task_run_id]}
        if flow_run_id:
            logs["flow_run_id"] = {"any_": [flow_run_id]}
        if not logs:
            raise ValueError("read_logs needs a task_run_id or a flow_run_id")
        lines: list[dict[str, Any]] = []
        while True:
            body = {"logs": logs, "sort": "TIMESTAMP_ASC", "limit": self.PAGE}
            page = self._request("POST", "/logs/filter", json={**body, "offset": len(lines)})
            lines += page
            if len(page) < self.PAGE:
                return lines

    def read_artifacts(self, flow_run_id: str) -> list[dict[str, Any]]:
        """The artifacts a flow run created (``POST /artifacts/filter``), oldest first."""
        body = {
            "artifacts": {"flow_run_id": {"any_": [flow_run_id]}},
            "sort": "CREATED_DESC",
            "limit": 200,
        }
        return list(reversed(self._request("POST", "/artifacts/filter", json=body)))

    # --- events and work pools ----------------------------------------------------
    def emit_event(
        self,
        event: str,
        resource_id: str,
        *,
        payload: dict[str, Any] | None = None,
        resource: dict[str, str] | None = None,
    ) -> str:
        """Send one event (``POST /events``); return its id."""
        event_id = str(uuid.uuid4())
        body = [
            {
                "id": event_id,
                "occurred": datetime.now(UTC).isoformat(),
                "event": event,
                "resource": {"prefect.resource.id": resource_id, **(resource or {})},
                "payload": payload or {},
            }
        ]
        self._request("POST", "/events", json=body)
        return event_id

    def read_work_pool(self, name: str) -> dict[str, Any]:
        return self._request("GET", f"/work_pools/{name}")

    def create_work_pool(
        self, name: str, pool_type: str, base_job_template: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "type": pool_type}
        if base_job_template is not None:
            body["base_job_template"] = base_job_template
        return self._request("POST", "/work_pools/", json=body)

    def read_workers(self, pool: str) -> list[dict[str, Any]]:
        return self._request("POST", f"/work_pools/{pool}/workers/filter", json={})
