"""Fixtures for the infra tests (helpers live in tests/infra/mocking.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.mocking import SCHEMAS_DIR, STACKS, StackRun, run_stack


@pytest.fixture(scope="session")
def stack_runs() -> dict[str, StackRun]:
    return {stack: run_stack(stack) for stack in STACKS}


@pytest.fixture(scope="session", params=STACKS)
def stack_run(request, stack_runs) -> StackRun:
    return stack_runs[request.param]


@pytest.fixture(scope="session")
def kind_run(stack_runs) -> StackRun:
    return stack_runs["kind"]


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    if not SCHEMAS_DIR.is_dir():
        pytest.skip(
            f"chart schemas not found at {SCHEMAS_DIR}: they live in the steering repo's "
            "shared/schemas, beside this clone (present in CI, absent in a user's clone)"
        )
    return SCHEMAS_DIR
