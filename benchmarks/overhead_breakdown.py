"""``python -m benchmarks.baseline_overhead --breakdown``: where shared_ml's extra cost goes.

Three parts: what its persistence and validation cost in one process, what its imports
add in fresh processes, and how many full garbage collections each side's run makes.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.baseline_overhead import (
    REPO_ROOT,
    plain_module_args,
    shared_ml_module_args,
    synthetic_params,
)
from benchmarks.plain_sklearn_script import plain_sklearn

BREAKDOWN_REPEAT = 5
IMPORT_REPEAT = 7


def cost_breakdown(
    config_path: Path, rows: int | None, repeat: int = BREAKDOWN_REPEAT
) -> dict[str, float]:
    """Best-of-``repeat`` milliseconds of what shared_ml does beyond the plain script,
    measured in this process on the same data with the real store and validation code."""
    import numpy as np

    from shared_ml.artifacts import ArtifactStore, clear_memo
    from shared_ml.config import validate_config
    from shared_ml.steps.ingest import make_synthetic
    from shared_ml.steps.validate import check_frame

    raw, _ = synthetic_params(config_path, rows)
    config = validate_config(raw, str(config_path))
    frame = make_synthetic(config.data.source, config.data.target, config.seed)  # type: ignore[arg-type]
    features = {"X": np.random.default_rng(0).random((int(len(frame) * 0.75), 28))}

    with tempfile.TemporaryDirectory(prefix="orchbench-breakdown-") as tmp:
        store = ArtifactStore(tmp)
        dataset_uri = store.put_frame(frame)
        costs = {
            "generate the synthetic table (both sides do this)": lambda: make_synthetic(
                config.data.source,  # type: ignore[arg-type]
                config.data.target,
                config.seed,
            ),
            "put_frame: dataset to Arrow IPC, BLAKE3, atomic write": lambda: store.put_frame(frame),
            "put_object: training features pickled, BLAKE3, atomic write": lambda: store.put_object(
                features, "features"
            ),
            "get_frame from disk (the in-process memo skips it)": lambda: (
                clear_memo(),
                store.get_frame(dataset_uri),
            ),
            "validation rules (check_frame)": lambda: check_frame(frame, config),
        }
        result = {}
        for label, work in costs.items():
            best = float("inf")
            for _ in range(repeat):
                started = time.perf_counter()
                work()
                best = min(best, time.perf_counter() - started)
            result[label] = round(best * 1000, 1)
        clear_memo()
    return result


def plain_import_statements() -> list[str]:
    """The import statements of ``plain_sklearn``, read from its source."""
    import inspect

    return [
        line.strip()
        for line in inspect.getsource(plain_sklearn).splitlines()
        if line.strip().startswith(("import ", "from "))
    ]


def shared_ml_import_statements() -> list[str]:
    """What a ``python -m shared_ml`` run imports beyond the scientific stack: the CLI, the
    config layer, the runner and every step module."""
    from shared_ml.spec import PIPELINE

    steps = ", ".join(f"shared_ml.steps.{name}" for name in PIPELINE.step_names)
    return [
        # As ``python -m shared_ml`` does: the config layer with the cyclic GC paused.
        "from shared_ml.__main__ import cyclic_gc_paused",
        "with cyclic_gc_paused():\n    import shared_ml.config",
        "import shared_ml.runner",
        f"import {steps}",
    ]


def import_cost(repeat: int = IMPORT_REPEAT) -> dict[str, float]:
    """Median milliseconds, in fresh processes, of the plain script's imports and of what
    shared_ml's imports add to them (interleaved; the pairs' median difference)."""
    plain = "\n".join(plain_import_statements())
    both = "\n".join([*plain_import_statements(), *shared_ml_import_statements()])
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    def spawn(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        return time.perf_counter() - started

    spawn(plain), spawn(both)  # warm the page cache and the bytecode caches
    plain_times, added_times = [], []
    for repetition in range(repeat):  # the order alternates, as in the main comparison
        if repetition % 2 == 0:
            alone, with_shared = spawn(plain), spawn(both)
        else:
            with_shared, alone = spawn(both), spawn(plain)
        plain_times.append(alone)
        added_times.append(with_shared - alone)
    return {
        "process start and the plain script's imports (both sides pay these)": round(
            statistics.median(plain_times) * 1000, 1
        ),
        "imports shared_ml adds: pydantic and the config models, PyYAML, filelock, BLAKE3 "
        "(fresh process)": round(statistics.median(added_times) * 1000, 1),
    }


# Runs a module as ``python -m`` would and reports on stderr how many full (generation 2)
# collections the garbage collector made before exit (the one at exit is the same on both
# sides and is not counted).
_COUNT_FULL_COLLECTIONS = """
import atexit, gc, runpy, sys
full = []
gc.callbacks.append(lambda phase, info: phase == "stop" and info["generation"] == 2
                    and full.append(1))
atexit.register(lambda: print(f"full-collections={len(full)}", file=sys.stderr))
module = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def full_collections(config_path: Path, rows: int | None) -> dict[str, int]:
    """Full garbage collections during one fresh run of each side: the collector walks
    every object imported so far, so one more of them costs tens of milliseconds."""
    raw, params = synthetic_params(config_path, rows)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("ORCHBENCH_FAULTS", None)
    counts = {}
    with tempfile.TemporaryDirectory(prefix="orchbench-gc-") as tmp:
        for side, module_args in (
            ("shared_ml", shared_ml_module_args(raw, Path(tmp) / "shared_ml")),
            ("plain", plain_module_args(params, Path(tmp) / "plain")),
        ):
            done = subprocess.run(
                [sys.executable, "-c", _COUNT_FULL_COLLECTIONS, *module_args],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            line = done.stderr.strip().splitlines()[-1]
            counts[side] = int(line.removeprefix("full-collections="))
    return counts
