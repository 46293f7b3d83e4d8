"""A real SMTP server on 127.0.0.1 (aiosmtpd) for the suites that check alert e-mails.

Every suite's environment has aiosmtpd (the ``dev`` extra). Use it as a context manager:
it binds a free port on entry and stops on exit. ``wait_for`` polls with a bound, and
returns the parsed messages (``email.message.EmailMessage``) received so far.
"""

from __future__ import annotations

import socket
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller


class _Collector:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.changed = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.changed:
            self.messages.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
            self.changed.notify_all()
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    """``host``/``port`` to configure a sender with; ``messages`` as received."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self._collector = _Collector()
        self.port = free_port()
        self._controller = Controller(self._collector, hostname=self.host, port=self.port)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        with self._collector.changed:
            return [m for _, m in self._collector.messages]

    def recipients(self) -> list[list[str]]:
        with self._collector.changed:
            return [r for r, _ in self._collector.messages]

    def wait_for(self, count: int = 1, timeout_s: float = 60.0) -> list[EmailMessage]:
        """The messages once at least ``count`` arrived; raises after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._collector.changed:
            while len(self._collector.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(self._collector.messages)} of {count} e-mail(s) arrived at "
                        f"{self.host}:{self.port} within {timeout_s:.0f} s"
                    )
                self._collector.changed.wait(left)
            return [m for _, m in self._collector.messages]
