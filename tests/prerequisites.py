"""A test whose prerequisite is missing: a skip on a developer's machine, a failure under
CI (CI=true), where `make test` / `.ci/run` install everything and a skip would hide it."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(reason: str, under_ci: str | None = None) -> NoReturn:
    """Skip naming ``reason``; under CI fail with ``under_ci`` (default: the reason)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(under_ci or reason)
    pytest.skip(reason)
