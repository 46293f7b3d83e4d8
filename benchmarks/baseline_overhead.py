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
- ``plain``: this module's ``plain_sklearn`` in ``python -m benchmarks.baseline_overhead
  --plain-worker``: the same work written directly against scikit-learn, as someone
  would without shared_ml: data generation, the same data checks (rows, nulls, finite
  numbers, labels; the declared column schema with pandera when the config declares
  ``validation.columns``, as shared_ml's validate step does), split, ColumnTransformer,
  estimator, metrics, a JSON registry that versions the pickled model and promotes it
  if it beats the champion, and the champion scoring the whole table (predictions
  written as an Arrow IPC file, as shared_ml's score step writes them). No shared_ml
  import, no intermediate artifacts, no run records. Its metrics and the number of rows
  it scored must equal the shared_ml run's (checked), which proves the two did the same
  work.

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
BREAKDOWN_REPEAT = 5
IMPORT_REPEAT = 7
REPO_ROOT = Path(__file__).resolve().parent.parent
STORAGE_KEYS = ("artifact_root", "registry_root", "runs_root")


# --- the hand-written script (runs in its own process; imports scikit-learn only) ----------
def plain_sklearn(params: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's work as someone would write it without shared_ml."""
    import pickle

    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import make_classification
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    n_numeric, n_categorical = params["numeric_features"], params["categorical_features"]
    n_features = n_numeric + n_categorical
    x, y = make_classification(
        n_samples=params["rows"],
        n_features=n_features,
        n_informative=max(2, int(n_features * params["informative_fraction"])),
        n_redundant=0,
        n_classes=params["classes"],
        class_sep=params["class_separation"],
        random_state=params["seed"],
    )
    frame = pd.DataFrame({f"num_{i:03d}": x[:, i] for i in range(n_numeric)})
    levels = np.array([f"c{k}" for k in range(params["categories_per_feature"])], dtype=object)
    cuts = np.linspace(0, 1, params["categories_per_feature"] + 1)[1:-1]
    for j in range(n_categorical):
        column = x[:, n_numeric + j]
        frame[f"cat_{j:03d}"] = levels[np.searchsorted(np.quantile(column, cuts), column)]
    # The same data checks as shared_ml's validate step: enough rows, no nulls, finite
    # numbers, known labels, at least two classes.
    if len(frame) < params["min_rows"] or frame.isna().to_numpy().any():
        raise ValueError("too few rows or missing values")
    numeric = [c for c in frame.columns if c.startswith("num_")]
    categorical = [c for c in frame.columns if c.startswith("cat_")]
    if not np.isfinite(frame[numeric].to_numpy()).all():
        raise ValueError("infinite values")
    labels = set(np.unique(y).tolist())
    if not labels <= set(params["allowed_labels"]) or len(labels) < 2:
        raise ValueError(f"unexpected labels {labels}")
    if params["columns"]:
        plain_column_checks(frame.assign(**{params["target"]: y}), params["columns"])
    x_train, x_test, y_train, y_test = train_test_split(
        frame, y, test_size=params["test_fraction"], random_state=params["seed"], stratify=y
    )
    transformer = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline(
                    [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                ),
                numeric,
            ),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            ),
        ],
        sparse_threshold=0.0,
    )
    train_matrix = transformer.fit_transform(x_train).astype(np.float64)
    test_matrix = transformer.transform(x_test).astype(np.float64)
    model = LogisticRegression(random_state=params["seed"], **params["estimator_params"])
    model.fit(train_matrix, y_train)
    predicted = model.predict(test_matrix)
    proba = model.predict_proba(test_matrix)
    metrics = {
        "accuracy": round(float(accuracy_score(y_test, predicted)), 10),
        "f1": round(float(f1_score(y_test, predicted, pos_label=model.classes_[1])), 10),
        "roc_auc": round(float(roc_auc_score(y_test, proba[:, 1])), 10),
    }
    # Register: save the model, add a version to a JSON registry and promote it if it
    # beats the champion on the primary metric.
    out = Path(params["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    registry_path = out / "registry.json"
    registry = (
        json.loads(registry_path.read_text())
        if registry_path.exists()
        else {"champion": None, "versions": []}
    )
    version = len(registry["versions"]) + 1
    (out / f"model-v{version}.pkl").write_bytes(pickle.dumps((transformer, model), protocol=5))
    registry["versions"].append({"version": version, "metrics": metrics})
    champion = registry["champion"]
    primary = params["primary_metric"]
    if (
        champion is None
        or metrics[primary] > registry["versions"][champion - 1]["metrics"][primary]
    ):
        registry["champion"] = version
    registry_path.write_text(json.dumps(registry))
    # Score: the champion after registration predicts every row of the table.
    if registry["champion"] != version:
        transformer, model = pickle.loads((out / f"model-v{registry['champion']}.pkl").read_bytes())
    matrix = transformer.transform(frame[numeric + categorical]).astype(np.float64)
    scored = pd.DataFrame(
        {
            "row": np.arange(len(frame)),
            "prediction": model.predict(matrix),
            "confidence": model.predict_proba(matrix).max(axis=1),
        }
    )
    scored.to_feather(out / f"predictions-v{version}.arrow")
    return {**metrics, "rows_scored": len(scored)}


def plain_column_checks(frame: Any, columns: dict[str, dict[str, Any]]) -> None:
    """The declared column schema, checked with pandera as a script would write it."""
    import pandera.pandas as pa

    dtypes = {"int": pa.Int, "float": pa.Float, "str": pa.String, "bool": pa.Bool}
    schema = {}
    for name, rule in columns.items():
        checks = []
        if rule.get("allowed") is not None:
            checks.append(pa.Check.isin(list(rule["allowed"])))
        if rule.get("min") is not None:
            checks.append(pa.Check.ge(rule["min"]))
        if rule.get("max") is not None:
            checks.append(pa.Check.le(rule["max"]))
        dtype = pa.Category if rule["dtype"] == "category" else dtypes[rule["dtype"]]
        schema[name] = pa.Column(
            dtype,
            nullable=rule.get("nullable", False),
            checks=checks,
            regex=rule.get("regex", False),
        )
    pa.DataFrameSchema(schema, strict=False, coerce=False).validate(frame, lazy=True)


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

    from shared_ml.config import SyntheticSource, validate_config

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
    return ["benchmarks.baseline_overhead", "--plain-worker", json.dumps(worker_params)]


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

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_1m": os.getloadavg()[0],
        "python": platform.python_version(),
        "os": platform.platform(),
    }


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
    parser.add_argument("--plain-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plain_worker:
        print(json.dumps(plain_sklearn(json.loads(args.plain_worker))))
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    with tempfile.TemporaryDirectory(prefix="orchbench-overhead-") as tmp:
        samples, params = run_comparison(args.config, args.rows, args.repeat, Path(tmp))
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
