"""What does ``shared_ml`` cost over a hand-written scikit-learn script doing the same work?

    python -m benchmarks.baseline_overhead [--config configs/synthetic.yaml] [--rows 100000]
                                           [--repeat 9] [--json FILE] [--breakdown]

``--breakdown`` adds what shared_ml's persistence and validation cost in one process, and
what its imports add in fresh processes.

Both sides run in fresh processes, interleaved (the order alternates every repetition),
each after one untimed warm-up of each side so the OS page cache is equally warm:

- ``shared_ml``: ``python -m shared_ml --config C``, the baseline runner used by the
  ``local`` adapter (ingest, validate, preprocess, train, evaluate, select, register,
  score, with its content-addressed artifacts, run records and registry), storage in a
  fresh folder. The config has one model candidate, so select has one branch to pick.
- ``plain``: ``python -m benchmarks.plain_sklearn_script``: the same work written
  directly against scikit-learn, as someone would without shared_ml: data generation,
  the same data checks (rows, nulls, finite numbers, labels; the declared column schema
  with pandera when the config declares ``validation.columns``, as shared_ml's validate
  step does), split, ColumnTransformer, estimator, metrics, a JSON registry that
  versions the pickled model and promotes it if it beats the champion, and the champion
  scoring the whole table (predictions written as an Arrow IPC file, as shared_ml's
  score step writes them). No shared_ml import, no intermediate artifacts, no run
  records. Its metrics and the number of rows it scored must equal the shared_ml run's
  (checked), which proves the two did the same work.

Wall time is measured from spawn to exit (interpreter start and imports included); peak
memory is the child's ``ru_maxrss`` from ``os.wait4``. Both sides run with up-to-date
bytecode caches, as installed code does: ``PYTHONDONTWRITEBYTECODE`` is dropped for the
children, so the warm-up writes them. Targets: shared_ml at most 1.15x the plain script's
median wall time and at most 1.3x its median peak memory. The median of the per-repetition
ratios (each pair run back to back) is printed as well: it is less sensitive to the
machine's load drifting during the comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

WALL_TARGET = 1.15
MEMORY_TARGET = 1.30
REPO_ROOT = Path(__file__).resolve().parent.parent
STORAGE_KEYS = ("artifact_root", "registry_root", "runs_root")


# --- the measurement ---------------------------------------------------------------------
@dataclass
class Sample:
    side: str
    repetition: int
    wall_s: float
    peak_rss_mb: float
    metrics: dict[str, float]


def measure_child(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds from spawn to exit, peak RSS (MB) of the child, and its stdout."""
    with tempfile.TemporaryFile("w+") as stdout:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        stderr = child.stderr.read().decode() if child.stderr else ""
        if child.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited {child.returncode}: {stderr[-1500:]}")
        stdout.seek(0)
        return wall, usage.ru_maxrss / 1024, stdout.read()  # ru_maxrss is in KiB on Linux


def synthetic_params(config_path: Path, rows: int | None) -> tuple[dict[str, Any], dict]:
    """The config (with rows overridden) as a mapping, and the plain script's parameters."""
    import yaml

    from shared_ml.config import validate_config
    from shared_ml.sources import SyntheticSource

    raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    if rows is not None:
        raw.setdefault("data", {}).setdefault("source", {})["rows"] = rows
    config = validate_config(raw, str(config_path))
    source = config.data.source
    candidates = config.model.resolved_candidates()
    if (
        not isinstance(source, SyntheticSource)
        or source.drift is not None
        or len(candidates) != 1
        or candidates[0].estimator != "logistic_regression"
    ):
        raise SystemExit(
            f"{config_path}: the comparison needs data.source.kind=synthetic without drift "
            "and one model, model.estimator=logistic_regression (the plain script "
            "implements only those)"
        )
    params = {
        **source.model_dump(mode="json", exclude={"kind", "drift", "drift_origin"}),
        "seed": config.seed,
        "target": config.data.target,
        "columns": {k: v.model_dump(mode="json") for k, v in config.validation.columns.items()},
        "test_fraction": config.preprocess.test_fraction,
        "estimator_params": {"max_iter": 1000, **candidates[0].params},
        "min_rows": config.validation.min_rows,
        "allowed_labels": list(config.validation.allowed_labels or range(source.classes)),
        "primary_metric": config.gate.primary_metric,
    }
    return raw, params


def shared_ml_module_args(raw: dict[str, Any], folder: Path) -> list[str]:
    """``-m`` arguments of one shared_ml run whose storage is all inside ``folder`` (new)."""
    import yaml

    storage = {k: str(folder / k.removesuffix("_root")) for k in STORAGE_KEYS}
    config_file = folder / "config.yaml"
    folder.mkdir(parents=True)
    config_file.write_text(yaml.safe_dump({**raw, "storage": storage}), encoding="utf-8")
    return ["shared_ml", "--config", str(config_file)]


def plain_module_args(params: dict[str, Any], folder: Path) -> list[str]:
    """``-m`` arguments of one plain-script run writing its registry into ``folder``."""
    worker_params = {**params, "out_dir": str(folder)}
    return ["benchmarks.plain_sklearn_script", json.dumps(worker_params)]


def run_comparison(
    config_path: Path, rows: int | None, repeat: int, work_dir: Path
) -> tuple[list[Sample], dict[str, Any]]:
    raw, params = synthetic_params(config_path, rows)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "ORCHBENCH_HOME": str(work_dir)}
    env.pop("ORCHBENCH_FAULTS", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # see the module docstring

    def shared_ml_side(tag: str) -> tuple[float, float, dict[str, float]]:
        command = [sys.executable, "-m", *shared_ml_module_args(raw, work_dir / tag)]
        wall, peak, out = measure_child(command, env)
        record = json.loads(Path(out.strip().splitlines()[-1]).read_text(encoding="utf-8"))
        if record["status"] != "success":
            raise RuntimeError(f"shared_ml run failed: {out}")
        steps = {s["step"]: s["duration_s"] for s in record["steps"]}
        work = {**record["metrics"], "rows_scored": record["scoring"].get("rows_scored")}
        return wall, peak, {**work, **{f"step:{k}": v for k, v in steps.items()}}

    def plain_side(tag: str) -> tuple[float, float, dict[str, float]]:
        command = [sys.executable, "-m", *plain_module_args(params, work_dir / tag)]
        wall, peak, out = measure_child(command, env)
        return wall, peak, json.loads(out.strip().splitlines()[-1])

    sides = {"shared_ml": shared_ml_side, "plain": plain_side}
    for name, side in sides.items():  # untimed warm-up of each side
        side(f"warmup-{name}")
    samples: list[Sample] = []
    for repetition in range(repeat):
        order = list(sides) if repetition % 2 == 0 else list(reversed(sides))
        for name in order:
            wall, peak, metrics = sides[name](f"{name}-{repetition}")
            samples.append(Sample(name, repetition, wall, peak, metrics))
    return samples, params


def summarize(samples: list[Sample]) -> dict[str, Any]:
    def medians(side: str, field: str) -> float:
        return statistics.median(getattr(s, field) for s in samples if s.side == side)

    summary: dict[str, Any] = {}
    for side in ("shared_ml", "plain"):
        rows = [s for s in samples if s.side == side]
        summary[side] = {
            "wall_s": {
                "median": medians(side, "wall_s"),
                "min": min(s.wall_s for s in rows),
                "max": max(s.wall_s for s in rows),
            },
            "peak_rss_mb": {
                "median": medians(side, "peak_rss_mb"),
                "min": min(s.peak_rss_mb for s in rows),
                "max": max(s.peak_rss_mb for s in rows),
            },
        }
    wall_ratio = medians("shared_ml", "wall_s") / medians("plain", "wall_s")
    memory_ratio = medians("shared_ml", "peak_rss_mb") / medians("plain", "peak_rss_mb")
    shared_runs = [s for s in samples if s.side == "shared_ml"]
    step_names = [k for k in shared_runs[0].metrics if k.startswith("step:")]
    summary["shared_ml_step_seconds_median"] = {
        name.removeprefix("step:"): statistics.median(s.metrics[name] for s in shared_runs)
        for name in step_names
    }

    def model_metrics(sample: Sample) -> dict[str, float]:
        return {k: v for k, v in sample.metrics.items() if not k.startswith("step:")}

    shared_metrics = model_metrics(shared_runs[0])
    summary["same_metrics"] = all(model_metrics(s) == shared_metrics for s in samples)
    summary["metrics"] = {"shared_ml": shared_metrics}
    summary["wall_ratio"] = wall_ratio
    paired = [
        next(s.wall_s for s in shared_runs if s.repetition == p.repetition) / p.wall_s
        for p in samples
        if p.side == "plain"
    ]
    summary["paired_wall_ratio"] = {
        "median": statistics.median(paired),
        "min": min(paired),
        "max": max(paired),
    }
    summary["memory_ratio"] = memory_ratio
    summary["within_target"] = wall_ratio <= WALL_TARGET and memory_ratio <= MEMORY_TARGET
    return summary


def machine() -> dict[str, Any]:
    import platform

    import psutil

    from benchmarks.harness.machine import cpu_model

    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.baseline_overhead",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "configs/synthetic.yaml")
    parser.add_argument("--rows", type=int, default=None, help="override data.source.rows")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time what shared_ml adds, piece by piece, and what its imports cost",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    with tempfile.TemporaryDirectory(prefix="orchbench-overhead-") as tmp:
        samples, params = run_comparison(args.config, args.rows, args.repeat, Path(tmp))
    # Imported here: the breakdown builds on this module's helpers.
    from benchmarks.overhead_breakdown import (
        BREAKDOWN_REPEAT,
        IMPORT_REPEAT,
        cost_breakdown,
        full_collections,
        import_cost,
    )

    breakdown = cost_breakdown(args.config, args.rows) if args.breakdown else None
    imports = import_cost() if args.breakdown else None
    collections = full_collections(args.config, args.rows) if args.breakdown else None
    summary = summarize(samples)
    result = {
        "conditions": {
            "config": str(args.config),
            "rows": params["rows"],
            "repeat": args.repeat,
            "interleaved": True,
            "warm_up": "one untimed run of each side first",
            "machine": machine(),
        },
        "samples": [asdict(s) for s in samples],
        "summary": summary,
        "targets": {"wall_ratio": WALL_TARGET, "memory_ratio": MEMORY_TARGET},
    }
    for side in ("shared_ml", "plain"):
        wall, peak = summary[side]["wall_s"], summary[side]["peak_rss_mb"]
        print(
            f"{side:>9}: wall median {wall['median']:.2f}s (min {wall['min']:.2f}, max "
            f"{wall['max']:.2f}); peak RSS median {peak['median']:.0f} MB "
            f"(min {peak['min']:.0f}, max {peak['max']:.0f})"
        )
    steps = ", ".join(f"{k} {v:.2f}s" for k, v in summary["shared_ml_step_seconds_median"].items())
    print(f"shared_ml steps (median): {steps}")
    print(
        f"ratio shared_ml/plain: wall {summary['wall_ratio']:.3f} (target <= {WALL_TARGET}), "
        f"peak memory {summary['memory_ratio']:.3f} (target <= {MEMORY_TARGET}); "
        f"same metrics: {summary['same_metrics']}; "
        f"{'within' if summary['within_target'] else 'OVER'} target"
    )
    paired = summary["paired_wall_ratio"]
    print(
        f"per-repetition wall ratio: median {paired['median']:.3f} "
        f"(min {paired['min']:.3f}, max {paired['max']:.3f})"
    )
    if breakdown:
        result["breakdown_ms"] = breakdown
        print(f"what shared_ml adds (ms; in one process: best of {BREAKDOWN_REPEAT}, same data):")
        for label, value in breakdown.items():
            print(f"  {label}: {value}")
        result["import_ms"] = imports
        print(f"imports (ms; median of {IMPORT_REPEAT} fresh processes):")
        for label, value in imports.items():
            print(f"  {label}: {value}")
        result["full_collections"] = collections
        print(
            "full garbage collections before exit (one run each): "
            + ", ".join(f"{side} {count}" for side, count in collections.items())
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
