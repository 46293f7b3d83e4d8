"""``python -m shared_ml --config C [--run-id R] [--seed S] [--date YYYY-MM-DD]``: one baseline run.

Used by the local adapter so the baseline pays process start and imports like every
tool. Prints the run record's path as its last line. Exit 0 on success, 1 when the
pipeline failed, 2 on a bad config (one message, no traceback).
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a block (restoring its previous state).

    Used around importing the config layer: pydantic, PyYAML and the config models leave
    about 10,000 objects that live until exit. Created with the collector on, they push
    Python 3.11's generational collector into one more full collection of everything
    imported by then (pandas, scikit-learn: about 140,000 objects, 30-80 ms on 2 cores)
    that frees nothing. Paused, they join the old generation in one step; collections
    of the libraries both the baseline and a plain script import are left as they are.
    ``python -m benchmarks.baseline_overhead --breakdown`` counts the full collections.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared_ml", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--run-id")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--date", help="the run's logical date (default: today)")
    args = parser.parse_args(argv)
    with cyclic_gc_paused():
        from shared_ml.config import load_config
        from shared_ml.errors import ConfigError
    from shared_ml.concurrency import task_concurrency
    from shared_ml.logs import LogFormatError, configure_logging
    from shared_ml.records import run_record_location
    from shared_ml.runner import run_pipeline

    try:
        configure_logging()  # the steps' log lines on stderr
    except LogFormatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    try:
        config = load_config(args.config, seed=args.seed).for_partition(args.date)
        max_workers = task_concurrency()
    except ConfigError as err:
        print(f"error: invalid config: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # the task-concurrency variable
        print(f"error: {err}", file=sys.stderr)
        return 2
    record = run_pipeline(config, run_id=args.run_id, max_workers=max_workers)
    print(run_record_location(config.storage.runs_root, record.run_id))  # the runner wrote it
    return 0 if record.status == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
