"""wait_for_task_runs returns only once every task run is recorded in its final state.

Prefect 3 records task runs from the flow process's events, asynchronously. A task run's
first row comes from its Pending event, under the engine's placeholder name
(``noop-e5a``); its task_run_name (``task_001``) arrives with the Running event. Counting a
plain Pending row as final returned that placeholder to the callers, which read graphs and
timings by name (it failed CI twice, under load)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from benchmarks.tools.prefect import client as prefect_client
from benchmarks.tools.prefect.client import PrefectClient, PrefectTimeout


def task_run(name: str, state_type: str, state_name: str) -> dict[str, Any]:
    return {"id": name, "name": name, "state": {"type": state_type, "name": state_name}}


def recording(answers: list[list[dict[str, Any]]]) -> PrefectClient:
    """A client whose server answers /task_runs/filter with these lists in turn (the last
    one for ever after)."""
    pending = iter(answers)
    last: list[list[dict[str, Any]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        last[:] = [next(pending, last[0] if last else [])]
        return httpx.Response(200, json=last[0])

    client = PrefectClient("http://127.0.0.1:1/api")
    client._http = httpx.Client(base_url=client.api_url, transport=httpx.MockTransport(handler))
    return client


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefect_client.time, "sleep", lambda _: None)


def test_a_plain_pending_row_is_waited_past_until_its_final_state_and_name_arrive() -> None:
    lagging = [
        task_run("task_000", "COMPLETED", "Completed"),
        task_run("noop-e5a", "PENDING", "Pending"),
    ]
    recorded = [
        task_run("task_000", "COMPLETED", "Completed"),
        task_run("task_001", "COMPLETED", "Completed"),
    ]
    with recording([lagging, lagging, recorded]) as client:
        names = [t["name"] for t in client.wait_for_task_runs("flow-run", expected=2)]
    assert names == ["task_000", "task_001"]


def test_a_task_run_left_not_ready_by_a_failed_upstream_is_final() -> None:
    runs = [task_run("train", "FAILED", "Failed"), task_run("evaluate-3fa", "PENDING", "NotReady")]
    with recording([runs]) as client:
        assert client.wait_for_task_runs("flow-run", expected=2) == runs


def test_a_row_that_stays_pending_is_a_timeout_naming_it() -> None:
    stuck = [task_run("noop-e5a", "PENDING", "Pending")]
    with recording([stuck]) as client, pytest.raises(PrefectTimeout, match="noop-e5a"):
        client.wait_for_task_runs("flow-run", expected=1, timeout_s=0)
