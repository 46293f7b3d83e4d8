"""Model tier: minimum quality, determinism, invariance and a directional expectation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared_ml.artifacts import ArtifactStore
from shared_ml.runner import run_pipeline
from shared_ml.steps.train import build_estimator
from tests.unit.helpers import small_config, synthetic_config


def test_minimum_quality_on_bundled_dataset(orchbench_home: Path) -> None:
    record = run_pipeline(small_config())
    assert record.metrics["accuracy"] >= 0.93
    assert record.metrics["roc_auc"] >= 0.97
    assert record.registry["promoted"]


def test_same_config_and_seed_same_results(
    orchbench_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_pipeline(small_config(model={"estimator": "random_forest"}))
    monkeypatch.setenv("ORCHBENCH_HOME", str(tmp_path / "elsewhere"))
    second = run_pipeline(small_config(model={"estimator": "random_forest"}))
    assert first.metrics == second.metrics
    assert first.prediction_hash == second.prediction_hash


def test_seed_changes_the_split(orchbench_home: Path) -> None:
    a = run_pipeline(small_config(seed=1))
    b = run_pipeline(small_config(seed=2))
    assert a.prediction_hash != b.prediction_hash


def test_logistic_regression_invariant_to_training_row_order(orchbench_home: Path) -> None:
    config = small_config()
    record = run_pipeline(config)
    store = ArtifactStore(config.storage.artifact_root)
    outputs = {s.step: s.outputs for s in record.steps}
    train = store.get_object(outputs["preprocess"]["train_set"])
    test = store.get_object(outputs["preprocess"]["test_set"])
    order = np.random.default_rng(0).permutation(len(train["y"]))
    fitted = build_estimator("logistic_regression", {"tol": 1e-8}, seed=0)
    shuffled = build_estimator("logistic_regression", {"tol": 1e-8}, seed=0)
    fitted.fit(train["X"], train["y"])
    shuffled.fit(train["X"][order], train["y"][order])
    np.testing.assert_array_equal(fitted.predict(test["X"]), shuffled.predict(test["X"]))
    np.testing.assert_allclose(
        fitted.predict_proba(test["X"]), shuffled.predict_proba(test["X"]), atol=1e-4
    )


def test_more_separable_data_scores_higher(orchbench_home: Path) -> None:
    def accuracy(separation: float) -> float:
        config = synthetic_config(
            data={
                "source": {
                    "kind": "synthetic",
                    "rows": 3000,
                    "numeric_features": 6,
                    "class_separation": separation,
                },
                "target": "label",
            },
        )
        return run_pipeline(config).metrics["accuracy"]

    assert accuracy(2.0) > accuracy(0.3)
