"""Native thread pools held to one thread while steps fit and predict.

Why: tools run the candidate branches differently (threads in one process for the plain
runner and Prefect, a process per task for Airflow and KFP). Histogram gradient boosting
uses OpenMP with one thread per core by default, so running three branches at once would
start three OpenMP pools on 2 cores and spin them against each other, and the number of
threads a fit gets would depend on the tool. One thread per fit makes the work the same in
every tool; the branches themselves are the parallelism.

threadpoolctl's limits are process-wide, so overlapping windows share one limit: the
first to open applies it, the last to close restores the previous setting.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_open_windows = 0
_limiter = None


@contextmanager
def single_threaded_native_pools() -> Iterator[None]:
    global _open_windows, _limiter
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    with _lock:
        if _open_windows == 0:
            _limiter = threadpool_limits(limits=1)
        _open_windows += 1
    try:
        yield
    finally:
        with _lock:
            _open_windows -= 1
            if _open_windows == 0 and _limiter is not None:
                _limiter.restore_original_limits()
                _limiter = None
