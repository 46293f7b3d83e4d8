"""``orchbench registry`` when the config's registry root is on an object store (as
``$ORCHBENCH_ARTIFACT_ROOT`` puts it on a cluster's store, read through its port-forward):
versions registered through ``shared_ml.registry`` on moto's S3 server on 127.0.0.1, read
back by the command, nothing read from or left on the local disk."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from benchmarks.cli import app
from shared_ml import storage
from shared_ml.registry import ModelRegistry
from tests.unit.s3_server import s3_endpoint, use_endpoint

__all__ = ["s3_endpoint"]  # the session fixture, used by name

NAME = "registry-s3"


def orchbench(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def register(root: str, digest: str, f1: float, gate_passed: bool) -> None:
    ModelRegistry(root, NAME).register(
        model_uri=f"{root}/models/{digest}.joblib",
        model_digest=digest,
        config_fingerprint="fingerprint",
        metrics={"f1": f1, "accuracy": f1},
        gate_passed=gate_passed,
        primary_metric="f1",
    )


@pytest.fixture
def config_on_store(
    s3_endpoint: str, orchbench_home: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, str]:
    """A config whose relative registry root resolves into a bucket; (config, root)."""
    # A bucket per test: the server lives for the session.
    bucket = use_endpoint(monkeypatch, s3_endpoint, f"t-registry-command-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv(storage.ARTIFACT_ROOT_ENV, bucket)
    config = orchbench_home / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": NAME,
                "data": {"source": {"kind": "bundled", "name": "breast_cancer"}},
                "model": {"estimator": "logistic_regression"},
                "storage": {"registry_root": "var/registry"},
            }
        ),
        encoding="utf-8",
    )
    return config, f"{bucket}/var/registry"


def test_the_registry_command_reads_a_registry_on_the_object_store(
    config_on_store: tuple[Path, str], orchbench_home: Path
) -> None:
    config, root = config_on_store
    register(root, "a" * 64, 0.95, gate_passed=True)
    register(root, "b" * 64, 0.97, gate_passed=False)

    code, out, err = orchbench("registry", "--config", config, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["name"], shown["champion"]) == (NAME, 1)
    assert [(v["version"], v["promoted"], v["reason"]) for v in shown["versions"]] == [
        (1, True, "first model to pass the gate"),
        (2, False, "failed the quality gate"),
    ]

    code, out, err = orchbench("registry", "--config", config)
    assert code == 0, err
    assert f"Registry {NAME}: champion v1" in out and "v1 *" in out and "0.9700" in out

    assert not (orchbench_home / "var").exists(), "nothing may be read from the local disk"


def test_an_unknown_registry_on_the_object_store_names_those_there(
    config_on_store: tuple[Path, str],
) -> None:
    config, root = config_on_store
    code, _, err = orchbench("registry", "--config", config, "--name", "nope")
    assert code == 1
    assert f"no registry 'nope' under {root}; it holds none yet" in " ".join(err.split())

    register(root, "c" * 64, 0.95, gate_passed=True)
    code, _, err = orchbench("registry", "--config", config, "--name", "nope")
    assert code == 1
    assert f"registries there: {NAME}" in " ".join(err.split())
