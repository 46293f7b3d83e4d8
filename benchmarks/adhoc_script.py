"""The pipeline's work as an ad-hoc script: what a data scientist writes before any
orchestration. ``python -m benchmarks.adhoc_script --config C --out DIR [--date D ...]``

It does the same work as the pipeline on the same config (load, check, split, fit each
candidate, pick the best, save the model, score the data) with the same scikit-learn
calls, so its selection and metrics equal the pipeline's. It has none of the rest on
purpose: no retries, no resume, no run record, no registry beyond a folder of pickled
models it appends to (the newest is the one it deploys), and it imports nothing of
``shared_ml``. Several dates run as a script's backfill does: a loop, the whole thing per
date. Progress lines on stderr are all that is left of a run once its terminal is gone.

``benchmarks.harness.adhoc`` runs it under the same faults as the tools, set through
``$ADHOC_SCRIPT_FAULT`` (the script itself has no fault handling to configure):
``transient:<marker file>`` raises on the first training, once; ``kill:<seconds>:<marker
file>`` SIGKILLs the process that many seconds into the middle candidate's training, once.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import signal
import sys
import threading
import time
from importlib import import_module
from pathlib import Path
from typing import Any

# Imported up front, as a script does: the step timings below are the work alone.
import numpy as np
import pandas as pd
import yaml
from sklearn import datasets
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

FAULT_ENV = "ADHOC_SCRIPT_FAULT"
# The estimators' settings the pipeline's train step uses (shared_ml.steps.train).
ESTIMATORS = {
    "logistic_regression": ("sklearn.linear_model", "LogisticRegression", {"max_iter": 1000}),
    "random_forest": (
        "sklearn.ensemble",
        "RandomForestClassifier",
        {"n_estimators": 100, "n_jobs": 1},
    ),
    "gradient_boosting": ("sklearn.ensemble", "HistGradientBoostingClassifier", {}),
}
METRIC_ORDER = ("f1", "roc_auc", "accuracy")


def say(step: str, started: float, detail: str = "") -> None:
    """One progress line: ``[adhoc] <step> done in <s> s``; the harness reads them."""
    seconds = time.perf_counter() - started
    print(f"[adhoc] {step} done in {seconds:.4f} s{detail}", file=sys.stderr, flush=True)


def candidates_of(model: dict[str, Any]) -> list[dict[str, Any]]:
    if model.get("candidates"):
        return model["candidates"]
    return [
        {
            "name": model["estimator"],
            "estimator": model["estimator"],
            "params": model.get("params", {}),
        }
    ]


def load(config: dict[str, Any], day: str | None):

    source, target = config["data"]["source"], config["data"].get("target", "target")
    if source.get("kind", "bundled") == "bundled":
        loader = getattr(datasets, f"load_{source.get('name', 'breast_cancer')}")
        return loader(as_frame=True).frame.rename(columns={"target": target}), target
    url = source["url"].format(ds=day, ds_nodash=(day or "").replace("-", ""))
    home = Path(os.environ.get("ORCHBENCH_HOME") or os.getcwd())
    return pd.read_csv(url if os.path.isabs(url) else home / url), target


def check(frame, target: str, validation: dict[str, Any]) -> None:
    if len(frame) < validation.get("min_rows", 1):
        raise ValueError(f"only {len(frame)} rows")
    if frame.isna().to_numpy().any():
        raise ValueError("missing values")
    labels = {str(v) for v in frame[target].unique()}
    allowed = validation.get("allowed_labels")
    if allowed is not None and not labels <= {str(v) for v in allowed}:
        raise ValueError(f"unexpected labels {sorted(labels)}")
    if len(labels) < 2:
        raise ValueError("one class only")


def split(frame, target: str, config: dict[str, Any]):

    features = [c for c in frame.columns if c != target]
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(frame[c])]
    categorical = [c for c in features if c not in numeric]
    y = frame[target].to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(
        frame[numeric + categorical],
        y,
        test_size=config.get("preprocess", {}).get("test_fraction", 0.25),
        random_state=config["seed"],
        stratify=y,
    )
    onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
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
                Pipeline([("impute", SimpleImputer(strategy="most_frequent")), ("onehot", onehot)]),
                categorical,
            ),
        ],
        remainder="drop",
        sparse_threshold=0.0,
    )
    train_x = transformer.fit_transform(x_train).astype(np.float64)
    return transformer, train_x, y_train, transformer.transform(x_test).astype(np.float64), y_test


def inject_fault(position: int, count: int) -> None:
    """The harness's faults (see the module docstring), each once per marker file: the
    transient error on the first candidate's training; the kill in the middle candidate's
    (after the ones before it were fitted), which sleeps until the signal arrives, as the
    pipeline's kill fault does, so the kill always lands mid-training."""
    kind, _, rest = os.environ.get(FAULT_ENV, "").partition(":")
    if kind == "transient" and position == 0 and not Path(rest).exists():
        Path(rest).write_text("fired")
        raise ConnectionError("transient error on the first training (injected)")
    if kind == "kill" and position == count // 2:
        seconds, _, marker = rest.partition(":")
        if not Path(marker).exists():
            Path(marker).write_text("fired")
            timer = threading.Timer(float(seconds), os.kill, (os.getpid(), signal.SIGKILL))
            timer.daemon = True
            timer.start()
            time.sleep(float(seconds) + 60)


def fit_and_score(candidate: dict[str, Any], seed: int, train_x, y_train, test_x, y_test):

    module, name, defaults = ESTIMATORS[candidate["estimator"]]
    model = getattr(import_module(module), name)(**defaults)
    model.set_params(**candidate.get("params", {}))
    if "random_state" in model.get_params() and "random_state" not in candidate.get("params", {}):
        model.set_params(random_state=seed)
    model.fit(train_x, y_train)
    predicted, proba = model.predict(test_x), model.predict_proba(test_x)
    metrics = {
        "accuracy": round(float(accuracy_score(y_test, predicted)), 10),
        "f1": round(float(f1_score(y_test, predicted, pos_label=model.classes_[1])), 10),
        "roc_auc": round(float(roc_auc_score(y_test, proba[:, 1])), 10),
    }
    return model, metrics


def run_once(config: dict[str, Any], out: Path, day: str | None) -> dict[str, Any]:
    """Everything, start to end, for one date (or none)."""
    started = time.perf_counter()
    frame, target = load(config, day)
    say("load", started)
    started = time.perf_counter()
    check(frame, target, config.get("validation", {}))
    say("check", started)
    started = time.perf_counter()
    transformer, train_x, y_train, test_x, y_test = split(frame, target, config)
    say("split", started)
    primary = config.get("gate", {}).get("primary_metric", "f1")
    results = []
    candidates = candidates_of(config["model"])
    for position, candidate in enumerate(candidates):
        started = time.perf_counter()
        inject_fault(position, len(candidates))
        model, metrics = fit_and_score(candidate, config["seed"], train_x, y_train, test_x, y_test)
        say(f"fit {candidate['name']}", started)
        others = [m for m in METRIC_ORDER if m != primary]
        key = (-metrics[primary], *(-metrics[m] for m in others), position)
        results.append((key, candidate["name"], model, metrics))
    _, best, model, metrics = min(results, key=lambda r: r[0])
    started = time.perf_counter()
    models = out / "models"
    models.mkdir(parents=True, exist_ok=True)
    path = models / f"model-{len(list(models.glob('model-*.pkl'))) + 1:04d}.pkl"
    path.write_bytes(pickle.dumps((transformer, model), protocol=5))
    say("save", started)
    started = time.perf_counter()
    features = frame[list(transformer.feature_names_in_)]
    predicted = model.predict(transformer.transform(features))
    name = f"predictions-{day}.csv" if day else "predictions.csv"
    frame.assign(prediction=predicted)[["prediction"]].to_csv(out / name, index_label="row")
    say("score", started)
    return {"date": day, "selected": best, "metrics": metrics, "model": str(path)}


def main(argv: list[str] | None = None) -> int:

    parser = argparse.ArgumentParser(prog="python -m benchmarks.adhoc_script", description=__doc__)
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="folder of models and predictions")
    parser.add_argument("--date", action="append", help="a date to run for (repeatable: a loop)")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    for day in args.date or [None]:
        print(json.dumps(run_once(config, args.out, day)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
