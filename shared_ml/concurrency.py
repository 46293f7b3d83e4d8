"""How many tasks of one run may run at once: ``$ORCHBENCH_TASK_CONCURRENCY``.

The benchmark harness sets it for every tool it can set it for (the plain runner, the
Prefect flows' task runner), from ``benchmarks/tools/concurrency.yaml``, so that the
tools run the candidate branches with the same number of slots. Where it is unset (a
cluster job, a hand-run flow) the same number applies by default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TASK_CONCURRENCY_ENV = "ORCHBENCH_TASK_CONCURRENCY"
# Equal to task_slots in benchmarks/tools/concurrency.yaml (a test keeps them equal):
# 3 candidate branches at once plus one slot to spare, on 2 cores.
DEFAULT_TASK_CONCURRENCY = 4


def task_concurrency(environ: Mapping[str, str] | None = None) -> int:
    """The variable's value, else the default; a bad value is an error naming it."""
    raw = (os.environ if environ is None else environ).get(TASK_CONCURRENCY_ENV, "").strip()
    if not raw:
        return DEFAULT_TASK_CONCURRENCY
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"${TASK_CONCURRENCY_ENV}={raw!r}: expected a whole number of at least 1")
    return value
