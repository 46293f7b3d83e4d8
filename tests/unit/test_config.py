"""Code tier: configs load, and every kind of bad config fails early and clearly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shared_ml.config import load_config, validate_config
from shared_ml.errors import ConfigError
from shared_ml.preflight import preflight
from tests.conftest import CONFIGS, REPO_ROOT

# Every config file at the top of configs/ is a pipeline config (configs/data/ holds data).
SHIPPED_CONFIGS = sorted(p.name for p in CONFIGS.iterdir() if p.suffix in (".yaml", ".yml"))


def test_the_shipped_configs_are_all_found() -> None:
    assert {"default.yaml", "daily.yaml", "bench-pipeline.yaml"} <= set(SHIPPED_CONFIGS)


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_shipped_configs_load(name: str, orchbench_home: Path) -> None:
    config = load_config(CONFIGS / name)
    assert Path(config.storage.artifact_root).is_relative_to(orchbench_home)


def test_json_config_loads(tmp_path: Path, orchbench_home: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"seed": 9, "model": {"estimator": "random_forest"}}))
    config = load_config(path)
    assert config.seed == 9 and config.model.estimator == "random_forest"


@pytest.mark.parametrize(
    ("document", "location", "expected"),
    [
        ({"sede": 1}, "sede", "unknown key"),
        ({"seed": "abc"}, "seed", "valid integer"),
        ({"seed": -1}, "seed", "greater than or equal to 0"),
        ({"preprocess": {"test_fraction": 1.5}}, "preprocess.test_fraction", "less than 1"),
        ({"model": {"estimator": "svm"}}, "model.estimator", "logistic_regression"),
        (
            {"model": {"estimator": "random_forest", "params": {"depth": 3}}},
            "model.params.depth",
            "unknown hyperparameter",
        ),
        (
            {"model": {"estimator": "logistic_regression", "params": {"C": -2.0}}},
            "model.params.C",
            "C",
        ),
        (
            {"data": {"source": {"kind": "synthetic", "rows": 5}}},
            "data.source.rows",
            "greater than or equal to 20",
        ),
        ({"data": {"source": {"kind": "ftp"}}}, "data.source", "kind"),
        ({"faults": {"trian": {"delay_s": 1}}}, "faults", "unknown step"),
        ({"schedule": "every day"}, "schedule", "cron"),
    ],
)
def test_invalid_config_names_key(document: dict, location: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(document, "cfg.yaml")
    message = str(info.value)
    assert location in message, message
    assert expected.lower() in message.lower(), message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")


def test_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("seed: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_data_file_missing_is_config_error(orchbench_home: Path) -> None:
    config = validate_config({"data": {"source": {"kind": "file", "url": "nope.csv"}}})
    with pytest.raises(ConfigError, match=r"data\.source\.url"):
        preflight(config)


def test_target_not_in_data_is_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHBENCH_HOME", str(REPO_ROOT))  # the shipped CSV is relative to it
    config = load_config(CONFIGS / "csv-example.yaml").model_dump()
    config["data"]["target"] = "wingspan"
    with pytest.raises(ConfigError, match=r"data\.target.*wingspan"):
        preflight(validate_config(config))


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "ORCHBENCH_HOME": str(cwd), "PYTHONPATH": str(REPO_ROOT)},
    )


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("seed: 1\nmodel: {estimator: svm}\n", "model.estimator"),
        ("seed: 1\nvalidation: {min_rowz: 3}\n", "validation.min_rowz"),
        ("data: {source: {kind: file, url: missing.csv}}\n", "data.source.url"),
    ],
)
def test_cli_bad_config_exits_2_without_traceback(
    tmp_path: Path, content: str, needle: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    done = run_cli("run", "--config", str(path), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "var").exists(), "no work may start on a bad config"


def test_cli_bad_arguments_exit_2(tmp_path: Path) -> None:
    assert run_cli("run", "--tool", "luigi", cwd=tmp_path).returncode == 2
    done = run_cli("run", "--fault", "train-oops", cwd=tmp_path)
    assert done.returncode == 2 and "STEP:KEY=VALUE" in done.stderr
