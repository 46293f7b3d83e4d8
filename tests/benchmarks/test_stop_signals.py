"""A benchmark stopped by SIGTERM or SIGHUP unwinds like Ctrl-C, so the ``finally`` that
stops a session's services runs (before, SIGTERM ended the process on the spot and left a
Prefect server and worker behind)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from benchmarks.harness.progress import stop_signals_interrupt


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_runs_the_cleanup_and_restores_the_handler(sig: signal.Signals) -> None:
    before = signal.getsignal(sig)
    cleaned_up = []
    with pytest.raises(KeyboardInterrupt, match=sig.name), stop_signals_interrupt():
        try:
            os.kill(os.getpid(), sig)
            time.sleep(30)  # a signal interrupts the sleep; its handler raises
            pytest.fail("the signal did not interrupt the benchmark")
        finally:
            cleaned_up.append(sig)
    assert cleaned_up == [sig]
    assert signal.getsignal(sig) == before
