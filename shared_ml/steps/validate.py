"""Data validation: schema, types, nulls, label set and minimum rows.

Every failure names the column and the rule, and is non-retryable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from shared_ml.artifacts import ArtifactStore
from shared_ml.config import PipelineConfig
from shared_ml.errors import DataValidationError
from shared_ml.steps import StepOutput


def check_frame(frame: pd.DataFrame, config: PipelineConfig) -> dict:
    rules = config.validation
    target = config.data.target
    if target not in frame.columns:
        raise DataValidationError(target, "target_present", "the label column is missing")
    for column in rules.required_columns:
        if column not in frame.columns:
            raise DataValidationError(column, "required_column", "required column is missing")
    if len(frame) < rules.min_rows:
        raise DataValidationError(
            None, "min_rows", f"{len(frame)} rows, at least {rules.min_rows} required"
        )
    for column in frame.columns:
        series = frame[column]
        null_fraction = float(series.isna().mean())
        if null_fraction > rules.max_null_fraction:
            raise DataValidationError(
                column,
                "max_null_fraction",
                f"{null_fraction:.2%} nulls, at most {rules.max_null_fraction:.2%} allowed",
            )
        if column == target:
            continue
        if ptypes.is_bool_dtype(series) or ptypes.is_numeric_dtype(series):
            values = series.to_numpy(dtype=float, na_value=np.nan)
            if np.isinf(values).any():
                raise DataValidationError(column, "finite", "contains infinite values")
        elif isinstance(series.dtype, pd.StringDtype):
            continue  # holds only strings (or missing values) by construction
        elif ptypes.is_string_dtype(series) or isinstance(series.dtype, pd.CategoricalDtype):
            kinds = {type(v).__name__ for v in series.dropna().head(10_000)}
            if not kinds <= {"str"}:
                raise DataValidationError(
                    column,
                    "type",
                    f"mixed value types {sorted(kinds)}; expected numbers or strings",
                )
        else:
            raise DataValidationError(
                column, "type", f"unsupported dtype {series.dtype}; expected numeric or string"
            )
    labels = frame[target].dropna()
    label_set = sorted({str(v) for v in labels.unique()})
    if rules.allowed_labels is not None:
        allowed = {str(v) for v in rules.allowed_labels}
        unexpected = sorted(set(label_set) - allowed)
        if unexpected:
            raise DataValidationError(
                target,
                "allowed_labels",
                f"unexpected labels {unexpected[:10]}; allowed {sorted(allowed)}",
            )
    if len(label_set) < rules.min_classes:
        raise DataValidationError(
            target,
            "min_classes",
            f"{len(label_set)} classes, at least {rules.min_classes} required",
        )
    return {
        "rows": len(frame),
        "columns": list(map(str, frame.columns)),
        "dtypes": {str(c): str(t) for c, t in frame.dtypes.items()},
        "labels": label_set,
    }


def validate(config: PipelineConfig, dataset: str) -> StepOutput:
    store = ArtifactStore(config.storage.artifact_root)
    frame = store.get_frame(dataset)
    report = check_frame(frame, config)
    uri = store.put_json({"passed": True, **report}, "reports")
    return StepOutput(outputs={"report": uri}, metadata={"rows": report["rows"], "passed": True})
