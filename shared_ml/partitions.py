"""Write the bundled daily dataset: one CSV per date, drawn from a drifting synthetic source.

    python -m shared_ml.partitions [--out configs/data/daily] [--start 2026-01-01] [--end 2026-01-20]

The files are committed (``configs/daily.yaml`` reads them through ``{ds}``); this module
is how they were made, and a test checks that re-running it reproduces them byte for byte.
"""

from __future__ import annotations

import argparse
import io
import sys
from datetime import date, timedelta
from pathlib import Path

from shared_ml.sources import SyntheticSource
from shared_ml.steps.ingest import make_synthetic

DAILY_SOURCE = SyntheticSource(
    rows=240,
    numeric_features=6,
    categorical_features=1,
    categories_per_feature=3,
    classes=2,
    informative_fraction=0.5,
    class_separation=0.8,
    drift=0.15,
    drift_origin=date(2026, 1, 1),
)
DAILY_SEED = 7
FIRST, LAST = date(2026, 1, 1), date(2026, 1, 20)  # 20 days: the full plan's backfill


def partition_csv(day: date) -> str:
    """The CSV text of one day's partition (floats rounded: stable, readable files)."""
    frame = make_synthetic(DAILY_SOURCE, "label", DAILY_SEED, day)
    numeric = [c for c in frame.columns if c.startswith("num_")]
    frame[numeric] = frame[numeric].round(4)
    frame["label"] = frame["label"].map({0: "stay", 1: "churn"})
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def write_partitions(out: Path, first: date = FIRST, last: date = LAST) -> list[Path]:
    if last < first:
        raise ValueError(f"--end {last} is before --start {first}")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    day = first
    while day <= last:
        path = out / f"{day.isoformat()}.csv"
        tmp = path.with_suffix(".csv.tmp")
        tmp.write_text(partition_csv(day), encoding="utf-8")
        tmp.replace(path)  # atomic: a reader never sees half a partition
        written.append(path)
        day += timedelta(days=1)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared_ml.partitions", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("configs/data/daily"))
    parser.add_argument("--start", type=date.fromisoformat, default=FIRST)
    parser.add_argument("--end", type=date.fromisoformat, default=LAST)
    args = parser.parse_args(argv)
    try:
        paths = write_partitions(args.out, args.start, args.end)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(paths)} partitions to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
