"""OpenMP held to one thread while a step fits or predicts.

Why: tools run the candidate branches differently (threads in one process for the plain
runner and Prefect, a process per task for Airflow and KFP). Histogram gradient boosting
uses OpenMP with one thread per core by default, so three branches at once would start
three OpenMP teams on 2 cores and spin them against each other, and the threads a fit
gets would depend on the tool. One thread per fit makes the work the same in every tool;
the branches themselves are the parallelism.

OpenMP's thread count is a per-thread setting, so each branch's thread sets and restores
its own; BLAS limits are process-wide and are left alone (concurrent branches would race
to restore them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def single_threaded_native_pools() -> Iterator[None]:
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    with threadpool_limits(limits=1, user_api="openmp"):
        yield
