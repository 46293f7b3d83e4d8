"""The plain side of ``benchmarks.baseline_overhead``: the pipeline's work written directly
against scikit-learn, as someone would without shared_ml. It imports no shared_ml.

    python -m benchmarks.plain_sklearn_script PARAMS_JSON

prints the metrics and the number of rows scored as one JSON line. The parameters are
``baseline_overhead.synthetic_params``'s, plus ``out_dir`` for the registry.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


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


if __name__ == "__main__":
    print(json.dumps(plain_sklearn(json.loads(sys.argv[1]))))
