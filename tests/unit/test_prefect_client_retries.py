"""Our Prefect REST client retries a busy server as Prefect's own client does."""

from __future__ import annotations

import httpx
import pytest

from benchmarks.tools.prefect import client as prefect_client
from benchmarks.tools.prefect.client import PrefectApiError, PrefectClient


def answering(statuses: list[int], headers: dict[str, str] | None = None) -> PrefectClient:
    """A client whose server answers these statuses in turn, then 200 with ``true``."""
    answers = iter(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers, 200)
        return httpx.Response(status, json=True if status == 200 else {}, headers=headers)

    client = PrefectClient("http://127.0.0.1:1/api")
    client._http = httpx.Client(base_url=client.api_url, transport=httpx.MockTransport(handler))
    return client


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(prefect_client.time, "sleep", slept.append)
    return slept


def test_a_busy_server_is_retried_with_prefects_own_backoff(waits: list[float]) -> None:
    with answering([503, 429, 502, 408]) as client:
        assert client.healthy()
    assert waits == [2.0, 4.0, 8.0, 16.0]


def test_retry_after_is_honoured(waits: list[float]) -> None:
    with answering([503], headers={"Retry-After": "3"}) as client:
        assert client.server_version() == "True"
    assert waits == [3.0]


def test_a_server_busy_past_five_retries_is_an_error_naming_it(waits: list[float]) -> None:
    with answering([503] * 6) as client, pytest.raises(PrefectApiError, match="HTTP 503"):
        client.server_version()
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0]
