"""The shared_ml-vs-plain comparison: both sides do the same work, and bad input is refused.

The timing figures themselves are measured by running the script, never asserted here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmarks.baseline_overhead import main, synthetic_params
from benchmarks.overhead_breakdown import full_collections, import_cost, plain_import_statements
from benchmarks.plain_sklearn_script import plain_column_checks, plain_sklearn
from shared_ml.spec import PIPELINE
from tests.conftest import CONFIGS


def with_declared_columns(tmp_path: Path) -> Path:
    """configs/synthetic.yaml with a declared column schema (if it has none yet), so the
    comparison covers both sides' pandera checks."""
    config = yaml.safe_load((CONFIGS / "synthetic.yaml").read_text())
    config.setdefault("validation", {}).setdefault(
        "columns",
        {
            "^num_\\d{3}$": {"dtype": "float", "nullable": False, "regex": True},
            "target": {"dtype": "int", "nullable": False, "allowed": [0, 1]},
        },
    )
    path = tmp_path / "synthetic-columns.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_both_sides_reach_the_same_metrics_and_the_figures_are_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "overhead.json"
    config = with_declared_columns(tmp_path)
    assert (
        main(["--config", str(config), "--rows", "2000", "--repeat", "1", "--json", str(out)]) == 0
    )
    result = json.loads(out.read_text())
    summary = result["summary"]
    # Same metrics and the same number of rows scored by the champion: the same work.
    assert summary["same_metrics"] is True
    assert summary["metrics"]["shared_ml"]["rows_scored"] == 2000
    assert {s["side"] for s in result["samples"]} == {"shared_ml", "plain"}
    assert result["conditions"]["rows"] == 2000
    assert set(summary["shared_ml_step_seconds_median"]) == set(PIPELINE.step_names)
    assert summary["paired_wall_ratio"]["min"] <= summary["paired_wall_ratio"]["max"]
    assert "ratio shared_ml/plain" in capsys.readouterr().out


def test_plain_registry_promotes_only_a_better_model(tmp_path: Path) -> None:
    _, params = synthetic_params(CONFIGS / "synthetic.yaml", 1000)
    first = plain_sklearn({**params, "out_dir": str(tmp_path)})
    again = plain_sklearn({**params, "out_dir": str(tmp_path)})
    assert first == again
    registry = json.loads((tmp_path / "registry.json").read_text())
    assert [v["version"] for v in registry["versions"]] == [1, 2]
    assert registry["champion"] == 1  # equal, not better: the champion stays


def test_the_plain_column_checks_refuse_text_in_a_numeric_column() -> None:
    import pandas as pd
    import pandera.errors

    columns = {"^num_\\d{3}$": {"dtype": "float", "nullable": False, "regex": True}}
    plain_column_checks(pd.DataFrame({"num_000": [0.5, 1.5]}), columns)
    with pytest.raises(pandera.errors.SchemaErrors, match="num_000"):
        plain_column_checks(pd.DataFrame({"num_000": ["a", "b"]}), columns)


def test_a_config_the_plain_script_cannot_mirror_is_refused(tmp_path: Path) -> None:
    config = yaml.safe_load((CONFIGS / "synthetic.yaml").read_text())
    config["model"] = {"estimator": "random_forest", "params": {}}
    path = tmp_path / "forest.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit, match=r"model\.estimator=logistic_regression"):
        main(["--config", str(path), "--repeat", "1"])


def test_repeat_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--repeat", "0"])
    assert exit_info.value.code == 2
    assert "--repeat must be at least 1" in capsys.readouterr().err


def test_the_import_cost_compares_the_plain_imports_with_shared_mls_added() -> None:
    statements = plain_import_statements()
    assert "from sklearn.linear_model import LogisticRegression" in statements
    assert not any("shared_ml" in line for line in statements)
    costs = import_cost(repeat=1)  # every statement really imports: a typo fails the spawn
    plain, added = costs.values()
    assert plain > 0 and isinstance(added, float)


def test_full_collections_are_counted_in_a_real_run_of_each_side() -> None:
    counts = full_collections(CONFIGS / "synthetic.yaml", 2000)
    assert set(counts) == {"shared_ml", "plain"}
    # Importing pandas and scikit-learn alone triggers full collections on either side.
    assert all(isinstance(n, int) and n >= 1 for n in counts.values())
