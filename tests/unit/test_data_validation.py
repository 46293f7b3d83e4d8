"""Data tier: every validation rule catches what it is for, and names column and rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared_ml.errors import DataValidationError
from shared_ml.steps.validate import check_frame
from tests.unit.helpers import small_config


def good_frame(rows: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "colour": rng.choice(["red", "blue"], size=rows),
            "target": np.arange(rows) % 2,
        }
    )


def test_good_frame_passes() -> None:
    report = check_frame(good_frame(), small_config())
    assert report["rows"] == 200 and report["labels"] == ["0", "1"]


def _broken(kind: str) -> tuple[pd.DataFrame, dict]:
    frame, overrides = good_frame(), {}
    if kind == "target_present":
        frame = frame.drop(columns="target")
    elif kind == "required_column":
        overrides = {"validation": {"required_columns": ["weight"]}}
    elif kind == "min_rows":
        frame = frame.head(10)
    elif kind == "max_null_fraction":
        frame.loc[::10, "x"] = np.nan
    elif kind == "finite":
        frame.loc[3, "x"] = np.inf
    elif kind == "type":
        frame["colour"] = frame["colour"].astype(object)
        frame.loc[5, "colour"] = 7
    elif kind == "allowed_labels":
        overrides = {"validation": {"allowed_labels": [0]}}
    elif kind == "min_classes":
        frame["target"] = 1
    return frame, overrides


@pytest.mark.parametrize(
    ("rule", "column"),
    [
        ("target_present", "target"),
        ("required_column", "weight"),
        ("min_rows", None),
        ("max_null_fraction", "x"),
        ("finite", "x"),
        ("type", "colour"),
        ("allowed_labels", "target"),
        ("min_classes", "target"),
    ],
)
def test_rule_violation_names_column_and_rule(rule: str, column: str | None) -> None:
    frame, overrides = _broken(rule)
    with pytest.raises(DataValidationError) as info:
        check_frame(frame, small_config(**overrides))
    assert info.value.rule == rule
    assert info.value.column == column
    assert rule in str(info.value)
    assert not info.value.retryable


def test_null_tolerance_is_configurable() -> None:
    frame, _ = _broken("max_null_fraction")
    check_frame(frame, small_config(validation={"max_null_fraction": 0.2}))
