"""What every part of the Airflow REST client raises and parses."""

from __future__ import annotations

from datetime import datetime


class AirflowApiError(RuntimeError):
    def __init__(self, method: str, endpoint: str, status: int, body: str) -> None:
        self.method = method
        self.endpoint = endpoint
        self.status = status
        self.body = body
        excerpt = " ".join(body.split())[:500]
        super().__init__(f"Airflow API {method} {endpoint} -> HTTP {status}: {excerpt}")


class AirflowTimeout(TimeoutError):
    pass


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
