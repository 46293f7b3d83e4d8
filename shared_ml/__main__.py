"""``python -m shared_ml --config C [--run-id R] [--seed S]``: one baseline run.

Used by the local adapter so the baseline pays process start and imports like every
tool. Prints the run record's path as its last line. Exit 0 on success, 1 when the
pipeline failed, 2 on a bad config (one message, no traceback).
"""

from __future__ import annotations

import argparse
import sys

from shared_ml.config import load_config
from shared_ml.errors import ConfigError
from shared_ml.records import run_record_path
from shared_ml.runner import run_pipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared_ml", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--run-id")
    parser.add_argument("--seed", type=int)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, seed=args.seed)
    except ConfigError as err:
        print(f"error: invalid config: {err}", file=sys.stderr)
        return 2
    record = run_pipeline(config, run_id=args.run_id)
    print(run_record_path(config.storage.runs_root, record.run_id))  # written by the runner
    return 0 if record.status == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
