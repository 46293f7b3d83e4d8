"""Error types shared by every step and every orchestrator.

Each tool maps ``NonRetryableError`` to its own "fail without retry" mechanism
(AirflowFailException, a Prefect retry condition, ...). Anything else is treated as
transient and retried according to the step's policy in the pipeline spec.
"""

from __future__ import annotations


class OrchbenchError(Exception):
    """Base class of every error raised on purpose by orchbench."""


class NonRetryableError(OrchbenchError):
    """Retrying cannot help: the inputs or the configuration are wrong."""

    retryable = False


class ConfigError(NonRetryableError):
    """A configuration value is invalid. ``location`` is the dotted key path or file."""

    def __init__(self, location: str, problem: str) -> None:
        self.location = location
        self.problem = problem
        super().__init__(f"{location}: {problem}")


class DataValidationError(NonRetryableError):
    """The data broke a validation rule. Names the column and the rule."""

    def __init__(self, column: str | None, rule: str, detail: str) -> None:
        self.column = column
        self.rule = rule
        self.detail = detail
        where = f"column {column!r}" if column else "dataset"
        super().__init__(f"data validation failed: {where} broke rule {rule!r}: {detail}")


class RegistryError(NonRetryableError):
    """The model registry is unusable (corrupt index, unsupported location)."""


class InjectedNonRetryableError(NonRetryableError):
    """Raised by fault injection to simulate a hard, non-retryable failure."""


class TransientError(OrchbenchError):
    """A failure that may succeed on retry (network blip, flaky storage...)."""

    retryable = True


class InjectedTransientError(TransientError):
    """Raised by fault injection on the first N attempts of a step."""


def is_retryable(exc: BaseException) -> bool:
    """Whether an orchestrator should retry after ``exc``."""
    return not isinstance(exc, NonRetryableError)
