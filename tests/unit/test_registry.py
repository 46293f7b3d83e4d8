"""Code tier: promotion rules, idempotency, and consistency under concurrent writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shared_ml.errors import RegistryError
from shared_ml.registry import ModelRegistry
from shared_ml.runner import run_pipeline
from tests.conftest import CONFIGS, REPO_ROOT
from tests.unit.helpers import small_config


def register(registry: ModelRegistry, sha: str, f1: float, gate: bool = True):
    return registry.register(
        model_uri=f"mem://{sha}",
        model_digest=sha,
        config_fingerprint="cfg",
        metrics={"f1": f1},
        gate_passed=gate,
        primary_metric="f1",
    )


def test_champion_challenger_rules(tmp_path: Path) -> None:
    registry = ModelRegistry(str(tmp_path), "m")
    assert register(registry, "a", 0.80, gate=False).promoted is False
    first = register(registry, "b", 0.70)
    assert first.promoted and first.version == 2
    worse = register(registry, "c", 0.60)
    assert not worse.promoted and worse.champion_version == 2
    better = register(registry, "d", 0.90)
    assert better.promoted and registry.champion()["model_digest"] == "d"
    tie = register(registry, "e", 0.90)
    assert not tie.promoted, "a challenger must beat the champion, not equal it"


def test_same_model_registers_once(tmp_path: Path) -> None:
    registry = ModelRegistry(str(tmp_path), "m")
    first, again = register(registry, "a", 0.8), register(registry, "a", 0.8)
    assert again.already_registered and again.version == first.version
    assert len(registry.read()["versions"]) == 1


def test_pipeline_rerun_adds_no_version(orchbench_home: Path) -> None:
    config = small_config()
    one, two = run_pipeline(config), run_pipeline(config)
    assert one.registry["version"] == two.registry["version"] == 1
    assert two.registry["already_registered"]


def test_corrupt_index_is_reported_not_overwritten(tmp_path: Path) -> None:
    registry = ModelRegistry(str(tmp_path), "m")
    registry.root.mkdir(parents=True)
    registry.index_path.write_text("{half a json")
    with pytest.raises(RegistryError, match="corrupt registry index"):
        register(registry, "a", 0.5)
    assert registry.index_path.read_text() == "{half a json"


def test_parallel_pipelines_keep_registry_consistent(tmp_path: Path) -> None:
    """Six pipelines in parallel processes (two of them duplicates) share one registry."""
    # One candidate per run: this is about concurrent registrations, not the fan-out, and
    # six runs of three branches each on 2 cores would only make it slow.
    config = yaml.safe_load((CONFIGS / "default.yaml").read_text(encoding="utf-8"))
    config["model"] = {"estimator": "logistic_regression", "params": {"max_iter": 1000}}
    config_path = tmp_path / "one-candidate.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {**os.environ, "ORCHBENCH_HOME": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("ORCHBENCH_FAULTS", None)
    seeds = [1, 2, 3, 4, 1, 2]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shared_ml",
                "--config",
                str(config_path),
                "--seed",
                str(seed),
                "--run-id",
                f"par-{i}",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, seed in enumerate(seeds)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    index = json.loads((tmp_path / "var" / "registry" / "orchbench-ml" / "index.json").read_text())
    versions = [v["version"] for v in index["versions"]]
    assert versions == list(range(1, len(versions) + 1))
    keys = {(v["model_digest"], v["config_fingerprint"]) for v in index["versions"]}
    assert len(keys) == len(versions) == 4  # seeds 1-4; the duplicates reused a version
    assert index["champion"] in versions
    champion = next(v for v in index["versions"] if v["version"] == index["champion"])
    assert champion["metrics"]["f1"] == max(
        v["metrics"]["f1"] for v in index["versions"] if v["gate_passed"]
    )
