"""Code tier: the DAG (parallel candidates, selection, scoring) and the run's date.

Observed on the plain runner: branches overlap, each date reads its own partition, the
registry keeps one promotion decision per date, and a re-run adds nothing.
"""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

import pytest

from shared_ml.config import load_config, validate_config
from shared_ml.errors import ConfigError
from shared_ml.partitions import FIRST, LAST, write_partitions
from shared_ml.registry import ModelRegistry
from shared_ml.runner import run_pipeline
from tests.conftest import CONFIGS
from tests.unit.helpers import small_config


def _daily_config(home: Path):
    """configs/daily.yaml against a private copy of its partitions."""
    shutil.copytree(CONFIGS / "data" / "daily", home / "configs" / "data" / "daily")
    return load_config(CONFIGS / "daily.yaml")


def _files(root: str) -> set[str]:
    return {str(p) for p in Path(root).rglob("*") if p.is_file()}


def test_candidate_branches_overlap_in_the_plain_runner(orchbench_home: Path) -> None:
    config = small_config()
    record = run_pipeline(config)
    assert record.status == "success"
    trains = [record.attempts("train", c)[0] for c in config.candidate_names]
    assert len(trains) == 3
    # Overlap is an ordering fact: every branch started before any other branch ended.
    latest_start = max(t.started_at for t in trains)
    earliest_end = min(t.ended_at for t in trains)
    assert latest_start < earliest_end, [(t.key, t.started_at, t.ended_at) for t in trains]
    assert {s.key for s in record.steps} >= {"train[logreg]", "evaluate[hgb]", "select", "score"}
    ranked = [row["candidate"] for row in record.candidates]
    assert record.selected_candidate == ranked[0]
    assert record.scoring["scored"] and record.scoring["rows_scored"] == 569


def test_dates_pick_partitions_and_the_registry_keeps_each_decision(orchbench_home: Path) -> None:
    config = _daily_config(orchbench_home)
    dates = ["2026-01-01", "2026-01-02", "2026-01-03"]
    first = [run_pipeline(config, logical_date=d) for d in dates]
    assert [r.status for r in first] == ["success"] * 3
    assert [str(r.logical_date) for r in first] == dates
    assert len({r.prediction_hash for r in first}) == 3  # three different pieces of work
    registry = ModelRegistry(config.storage.registry_root, config.name)
    versions = registry.read()["versions"]
    assert [v["logical_date"] for v in versions] == dates
    best = None
    for version in versions:  # the champion changes only when a date's model beats it
        score = version["metrics"]["f1"]
        assert version["promoted"] == (version["gate_passed"] and (best is None or score > best))
        if version["promoted"]:
            best = score
    artifacts_before = _files(config.storage.artifact_root)
    again = [run_pipeline(config, logical_date=d) for d in dates]
    assert [r.prediction_hash for r in again] == [r.prediction_hash for r in first]
    assert all(r.registry["already_registered"] for r in again)
    assert len(registry.read()["versions"]) == 3
    assert _files(config.storage.artifact_root) == artifacts_before


def test_a_templated_url_needs_an_existing_partition(orchbench_home: Path) -> None:
    config = _daily_config(orchbench_home)
    record = run_pipeline(config, logical_date="2025-06-01")
    (ingest,) = record.attempts("ingest")
    assert record.status == "failed" and not ingest.error.retryable
    assert "2025-06-01.csv" in ingest.error.message


def test_drifting_synthetic_source_differs_by_date(orchbench_home: Path) -> None:
    config = small_config(
        data={"source": {"kind": "synthetic", "rows": 400, "drift": 0.5}, "target": "label"},
        model={"estimator": "logistic_regression"},
    )
    early, late = (run_pipeline(config, logical_date=d) for d in ("2026-01-01", "2026-03-01"))
    assert early.status == late.status == "success"
    assert early.metrics != late.metrics
    with pytest.raises(ConfigError, match="drift"):
        from shared_ml.steps.ingest import make_synthetic

        make_synthetic(config.data.source, "label", 1, None)


def test_no_champion_scores_nothing(orchbench_home: Path) -> None:
    record = run_pipeline(small_config(gate={"min_accuracy": 1.0, "min_f1": 1.0}))
    assert record.status == "success"
    assert record.registry["promoted"] is False and record.registry["champion_version"] is None
    assert record.scoring == {"scored": False, "reason": record.scoring["reason"]}
    assert "no champion" in record.scoring["reason"]


def test_single_model_config_keeps_working(orchbench_home: Path) -> None:
    config = small_config(model={"estimator": "random_forest", "params": {"n_estimators": 20}})
    assert config.candidate_names == ("random_forest",)
    record = run_pipeline(config)
    assert record.status == "success" and record.selected_candidate == "random_forest"


def test_wrongly_typed_column_fails_validation_and_registers_nothing(
    orchbench_home: Path,
) -> None:
    data = orchbench_home / "bad.csv"
    text = (CONFIGS / "data" / "penguins-like.csv").read_text(encoding="utf-8").splitlines()
    header, rows = text[0], text[1:]
    # bill_length_mm (a declared float) arrives as text in one row: pandas reads the
    # whole column as strings, which trains fine without a declared schema.
    rows[5] = "unknown" + rows[5][rows[5].index(",") :]
    data.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    config = load_config(CONFIGS / "csv-example.yaml")
    config = config.model_copy(
        update={
            "data": config.data.model_copy(
                update={"source": config.data.source.model_copy(update={"url": str(data)})}
            )
        }
    )
    record = run_pipeline(config, sleep=lambda s: pytest.fail("must not retry"))
    (validate,) = record.attempts("validate")
    assert record.status == "failed" and not validate.error.retryable
    assert "bill_length_mm" in validate.error.message and "float" in validate.error.message
    assert not record.attempts("register")
    assert not Path(config.storage.registry_root).exists()


@pytest.mark.parametrize(
    ("document", "location", "expected"),
    [
        ({"schedule": "@fortnightly"}, "schedule", "unknown preset"),
        ({"schedule": "61 * * * *"}, "schedule", "cron"),
        (
            {
                "model": {
                    "estimator": "random_forest",
                    "candidates": [{"name": "a", "estimator": "random_forest"}],
                }
            },
            "model",
            "either",
        ),
        (
            {
                "model": {
                    "candidates": [
                        {"name": "a", "estimator": "random_forest"},
                        {"name": "a", "estimator": "gradient_boosting"},
                    ]
                }
            },
            "model",
            "duplicate candidate",
        ),
        (
            {
                "model": {
                    "candidates": [
                        {"name": "a", "estimator": "random_forest"},
                        {"name": "b", "estimator": "logistic_regression", "params": {"C": -1}},
                    ]
                }
            },
            "model.candidates.1.params.C",
            "C",
        ),
        (
            {"data": {"source": {"kind": "file", "url": "x/{day}.csv"}}},
            "data.source.url",
            "placeholder",
        ),
        (
            {"validation": {"columns": {"x": {"dtype": "float", "min": 2, "max": 1}}}},
            "validation.columns.x",
            "greater than max",
        ),
        (
            {"validation": {"columns": {"x": {"dtype": "decimal"}}}},
            "validation.columns.x.dtype",
            "float",
        ),
    ],
)
def test_invalid_dag_and_date_config_names_key(
    document: dict, location: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(document, "cfg.yaml")
    assert location in str(info.value) and expected in str(info.value), str(info.value)


@pytest.mark.parametrize("schedule", ["@hourly", "@daily", "@weekly", "*/5 * * * *"])
def test_schedules_and_presets_accepted(schedule: str) -> None:
    assert validate_config({"schedule": schedule}).schedule == schedule


def test_bundled_partitions_are_reproducible(tmp_path: Path) -> None:
    written = write_partitions(tmp_path, FIRST, LAST)
    assert len(written) == 20  # 2026-01-01..20: every date a full benchmark backfills
    for path in written:
        assert filecmp.cmp(path, CONFIGS / "data" / "daily" / path.name, shallow=False), path.name


def test_openmp_is_single_threaded_inside_each_branch_window() -> None:
    import threading

    import sklearn.ensemble  # noqa: F401 - loads scikit-learn's OpenMP runtime
    from threadpoolctl import threadpool_info

    from shared_ml.threads import single_threaded_native_pools

    def openmp_threads() -> set[int]:
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"}

    seen: dict[str, set[int]] = {}

    def branch(name: str) -> None:
        before = openmp_threads()
        with single_threaded_native_pools():
            seen[f"{name} inside"] = openmp_threads()
        seen[f"{name} after"] = openmp_threads()
        seen[f"{name} before"] = before

    threads = [threading.Thread(target=branch, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen["a inside"] == seen["b inside"] == {1}
    assert seen["a after"] == seen["a before"] and seen["b after"] == seen["b before"]
