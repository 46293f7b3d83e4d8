"""shared_ml's log lines: every record carries the run id, the step and the attempt.

The library logs through Python's ``logging`` under the ``shared_ml`` logger and installs
no handler of its own when a host already has one, so each tool shows the lines in its
own viewer: Airflow's task log (the task process's root logger), Prefect's task-run logs
(``shared_ml`` listed in ``PREFECT_LOGGING_EXTRA_LOGGERS``), KFP's step logs (the
component's stderr). ``execute_step`` also keeps each step attempt's lines in a file
next to its step record (``steps/<task>.attempt-<n>.log``), the plain runner's log.

``ORCHBENCH_LOG_FORMAT=json`` switches the handler ``configure_logging`` installs to one
JSON object per line (python-json-logger), with ``run_id``, ``step``, ``attempt`` as keys.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

LOGGER_NAME = "shared_ml"
LOG_FORMAT_ENV = "ORCHBENCH_LOG_FORMAT"  # text (default) | json
LOG_LEVEL_ENV = "ORCHBENCH_LOG_LEVEL"  # INFO by default
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
JSON_FIELDS = ("asctime", "levelname", "name", "message", "run_id", "step", "attempt")

# The step running in this thread (the plain runner runs branches in threads).
_step: ContextVar[dict[str, Any] | None] = ContextVar("orchbench_step", default=None)


class LogFormatError(ValueError):
    """``ORCHBENCH_LOG_FORMAT`` names no known format."""


def log_format() -> str:
    value = os.environ.get(LOG_FORMAT_ENV, "text").strip().lower() or "text"
    if value not in ("text", "json"):
        raise LogFormatError(f"${LOG_FORMAT_ENV}={value!r}: expected text or json")
    return value


class StepLogger(logging.LoggerAdapter):
    """Adds ``run_id``, ``step`` and ``attempt`` to every record (as attributes, for
    JSON and for filters) and in front of the message (in JSON too), because a host's
    own formatter (Airflow's, Prefect's) does not print extra attributes."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        context = _step.get() or {}
        extra = {
            "run_id": context.get("run_id"),
            "step": context.get("step"),
            "attempt": context.get("attempt"),
        }
        kwargs["extra"] = {**extra, **(kwargs.get("extra") or {})}
        if context:
            msg = f"[{context['run_id']} {context['step']} attempt {context['attempt']}] {msg}"
        return msg, kwargs


def get_logger(name: str) -> StepLogger:
    """The logger for a shared_ml module (``get_logger(__name__)``)."""
    return StepLogger(logging.getLogger(name), {})


@contextmanager
def step_context(run_id: str, step: str, attempt: int) -> Iterator[None]:
    """Every shared_ml record logged inside the block names this run, step and attempt."""
    token = _step.set({"run_id": run_id, "step": step, "attempt": attempt})
    try:
        yield
    finally:
        _step.reset(token)


def make_formatter() -> logging.Formatter:
    if log_format() == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(" ".join(f"%({f})s" for f in JSON_FIELDS))
    return logging.Formatter(TEXT_FORMAT)


class StepCapture:
    """The formatted lines of one step attempt (the records logged in its context), to be
    written next to its step record when it ends."""

    def __init__(self) -> None:
        self.formatter = make_formatter()
        self.lines: list[str] = []

    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.lines)


class _CaptureDispatcher(logging.Handler):
    """One handler, installed once, that hands each record to the capture of its step
    attempt. (A handler per step, added and removed while other threads log, would
    race: a list of handlers changed during another thread's iteration skips entries.)"""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.active: dict[tuple[Any, Any, Any], StepCapture] = {}
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        key = (
            getattr(record, "run_id", None),
            getattr(record, "step", None),
            getattr(record, "attempt", None),
        )
        with self.guard:
            capture = self.active.get(key)
        if capture is None:
            return
        try:
            capture.lines.append(capture.formatter.format(record))
        except Exception:  # a log line must never fail the step
            self.handleError(record)


_dispatcher = _CaptureDispatcher()
logging.getLogger(LOGGER_NAME).addHandler(_dispatcher)


@contextmanager
def captured(run_id: str, step: str, attempt: int) -> Iterator[StepCapture]:
    capture = StepCapture()
    key = (run_id, step, attempt)
    with _dispatcher.guard:
        _dispatcher.active[key] = capture
    try:
        with step_context(run_id, step, attempt):
            yield capture
    finally:
        with _dispatcher.guard:
            _dispatcher.active.pop(key, None)


def configure_logging(stream: Any = None) -> None:
    """Give ``shared_ml``'s records a stderr handler when nothing in the process would
    print them (a plain ``python -m`` process, a KFP component). Idempotent."""
    logger = logging.getLogger(LOGGER_NAME)
    if any(getattr(h, "_orchbench", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(make_formatter())
    handler._orchbench = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False  # the line is printed once, by this handler


def _default_level() -> None:
    # INFO unless overridden: the steps' start/end lines are the point of the logs.
    logger = logging.getLogger(LOGGER_NAME)
    if logger.level == logging.NOTSET:
        level = os.environ.get(LOG_LEVEL_ENV, "INFO").strip().upper() or "INFO"
        if not isinstance(logging.getLevelName(level), int):
            raise LogFormatError(
                f"${LOG_LEVEL_ENV}={level!r}: expected DEBUG, INFO, WARNING or ERROR"
            )
        logger.setLevel(level)


_default_level()
