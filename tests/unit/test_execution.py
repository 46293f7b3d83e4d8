"""Code tier: the per-step bookkeeping that every tool's task goes through."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np

from shared_ml.execution import PeakRssSampler, execute_step
from shared_ml.records import read_step_records
from tests.unit.helpers import small_config

MB = 2**20


def _hold(megabytes: int, seconds: float) -> None:
    block = np.ones(megabytes * MB // 8)  # touched, so resident
    time.sleep(seconds)
    del block


def test_window_sees_a_peak_that_is_gone_by_its_end() -> None:
    with PeakRssSampler() as quiet:
        time.sleep(0.05)
    with PeakRssSampler() as busy:
        _hold(200, 0.1)
    assert busy.peak - quiet.peak > 150 * MB


def test_overlapping_windows_each_keep_their_own_peak() -> None:
    with PeakRssSampler() as outer:
        worker = threading.Thread(target=_hold, args=(200, 0.1))
        with PeakRssSampler() as inner:
            worker.start()
            worker.join()
        with PeakRssSampler() as later:
            time.sleep(0.05)
    assert inner.peak - later.peak > 150 * MB
    assert outer.peak >= inner.peak


def test_a_forked_child_samples_with_its_own_thread() -> None:
    with PeakRssSampler():  # the parent's thread exists before the fork
        pass
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its window's growth, then leave without cleanup
        try:
            with PeakRssSampler() as quiet:
                time.sleep(0.05)
            with PeakRssSampler() as busy:
                _hold(200, 0.1)
            os.write(write, str(busy.peak - quiet.peak).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    growth = int(os.read(read, 64) or b"0")
    os.close(read)
    assert growth > 150 * MB


def test_a_rerun_numbered_like_an_earlier_attempt_keeps_both_records(
    orchbench_home: Path,
) -> None:
    """A step executed again under an attempt number already on record: both stay."""
    config = small_config()
    first = execute_step("ingest", config, {}, run_id="rerun-x", attempt=1)
    again = execute_step("ingest", config, {}, run_id="rerun-x", attempt=1)
    assert first["outputs"] == again["outputs"]
    records = read_step_records(config.storage.runs_root, "rerun-x")
    assert [(r.step, r.attempt, r.outcome) for r in records] == [("ingest", 1, "success")] * 2
    assert records[0].started_at < records[1].started_at
