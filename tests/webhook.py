"""A real HTTP webhook receiver on 127.0.0.1 for the suites that check failure notifications.

Standard library only: the Airflow, Prefect and Kubeflow suites each run in their own
virtualenv, and all of them import this module (``from tests.webhook import WebhookReceiver``).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypedDict

DEFAULT_PATH = "/hooks/orchbench"


class ReceivedRequest(TypedDict):
    """One POST as it arrived, for tests that check more than the body (path, headers)."""

    path: str
    content_type: str | None
    json: Any


class WebhookReceiver:
    """Records every JSON body POSTed to it; answers 200 ``ok`` like a Slack webhook.

    Use it as a context manager: the server binds a free port on entry and its thread is
    shut down and joined on exit, so no test leaves a listening socket behind. The lists
    are filled by the server's handler threads, hence the lock and the copies returned.
    """

    def __init__(self, path: str = DEFAULT_PATH) -> None:
        self._path = path
        self._requests: list[ReceivedRequest] = []
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> WebhookReceiver:
        if self._server is not None:
            raise RuntimeError("webhook receiver already started")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what the tests read --------------------------------------------------------

    @property
    def url(self) -> str:
        """Where the notifier must POST; only known once the server has bound its port."""
        if self._server is None:
            raise RuntimeError("webhook receiver not started: use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_address[1]}{self._path}"

    @property
    def requests(self) -> list[ReceivedRequest]:
        """A snapshot of every POST so far, oldest first."""
        with self._changed:
            return list(self._requests)

    @property
    def payloads(self) -> list[Any]:
        """A snapshot of the decoded JSON bodies so far, oldest first."""
        with self._changed:
            return [r["json"] for r in self._requests]

    def for_run(self, run_id: str) -> list[Any]:
        """The orchbench notifications about one run (a session-wide receiver sees many)."""
        return [
            p
            for p in self.payloads
            if isinstance(p, dict) and p.get("orchbench", {}).get("run_id") == run_id
        ]

    def wait_for(self, count: int = 1, *, timeout: float) -> bool:
        """Block until at least ``count`` POSTs arrived or ``timeout`` seconds passed.

        Notifiers post from other processes after the run has ended, so a test may have
        to wait; the timeout is mandatory so a missing notification fails, not hangs.
        Returns whether the count was reached.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    # --- the server side ------------------------------------------------------------

    def _record(self, request: ReceivedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    payload = json.loads(body)
                except ValueError as err:
                    # Not recorded: a test then fails on "nothing received", and the
                    # sender sees why in the HTTP error instead of a dropped connection.
                    self.send_error(400, f"body is not JSON: {err}")
                    return
                receiver._record(
                    {
                        "path": self.path,
                        "content_type": self.headers.get("Content-Type"),
                        "json": payload,
                    }
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return  # keep pytest's output free of access logs

        return Handler
