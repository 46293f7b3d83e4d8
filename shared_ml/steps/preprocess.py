"""Split the data, then fit a ColumnTransformer on the training split only."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from shared_ml.artifacts import ArtifactStore
from shared_ml.config import PipelineConfig
from shared_ml.errors import ConfigError
from shared_ml.steps import StepOutput


def split_columns(frame: pd.DataFrame, config: PipelineConfig) -> tuple[list[str], list[str]]:
    features = [c for c in frame.columns if c != config.data.target]
    pre = config.preprocess
    numeric = (
        list(pre.numeric_columns)
        if pre.numeric_columns is not None
        else [c for c in features if pd.api.types.is_numeric_dtype(frame[c])]
    )
    categorical = (
        list(pre.categorical_columns)
        if pre.categorical_columns is not None
        else [c for c in features if c not in numeric]
    )
    for key, columns in (("numeric_columns", numeric), ("categorical_columns", categorical)):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ConfigError(f"preprocess.{key}", f"columns {missing} are not in the data")
    return numeric, categorical


def build_transformer(numeric: list[str], categorical: list[str], scale: bool) -> ColumnTransformer:
    numeric_steps = [("impute", SimpleImputer(strategy="median"))]
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    return ColumnTransformer(
        [
            ("numeric", Pipeline(numeric_steps), numeric),
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
        remainder="drop",
        sparse_threshold=0.0,
    )


def preprocess(config: PipelineConfig, dataset: str, report: str) -> StepOutput:
    del report  # consumed only to order this step after validation
    store = ArtifactStore(config.storage.artifact_root)
    frame = store.get_frame(dataset)
    numeric, categorical = split_columns(frame, config)
    y = frame[config.data.target].to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(
        frame[numeric + categorical],
        y,
        test_size=config.preprocess.test_fraction,
        random_state=config.seed,
        stratify=y,
    )
    transformer = build_transformer(numeric, categorical, config.preprocess.scale_numeric)
    train_matrix = transformer.fit_transform(x_train).astype(np.float64)
    test_matrix = transformer.transform(x_test).astype(np.float64)
    return StepOutput(
        outputs={
            "train_set": store.put_object({"X": train_matrix, "y": y_train}, "features"),
            "test_set": store.put_object({"X": test_matrix, "y": y_test}, "features"),
            "transformer": store.put_object(transformer, "transformers"),
        },
        metadata={
            "train_rows": int(train_matrix.shape[0]),
            "test_rows": int(test_matrix.shape[0]),
            "features_out": int(train_matrix.shape[1]),
            "numeric_columns": len(numeric),
            "categorical_columns": len(categorical),
            # The fan-out that follows: one train/evaluate branch per candidate.
            "candidates": list(config.candidate_names),
        },
    )
