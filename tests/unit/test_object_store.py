"""Code tier: storage on an object store, as a cluster run keeps it.

Relative storage roots resolve under $ORCHBENCH_ARTIFACT_ROOT; a whole pipeline then
keeps its artifacts, step records, logs and run record on S3 (moto's server on 127.0.0.1,
reached through the standard AWS_* variables), and a reader gets the record back, or an
error naming the URL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shared_ml import storage
from shared_ml.artifacts import ArtifactStore, clear_memo
from shared_ml.config import load_config, validate_config
from shared_ml.errors import ConfigError
from shared_ml.faults import count_attempt
from shared_ml.records import (
    RunRecordError,
    load_run_record,
    read_run_record,
    read_step_log,
    read_step_records,
    run_record_location,
)
from shared_ml.runner import run_pipeline
from tests.conftest import CONFIGS, REPO_ROOT
from tests.unit.helpers import small_config
from tests.unit.s3_server import s3_endpoint, use_endpoint

__all__ = ["s3_endpoint"]  # the session fixture, used by name

ROOTS = ("artifact_root", "registry_root", "runs_root")


def test_relative_roots_resolve_under_artifact_root(
    orchbench_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(storage.ARTIFACT_ROOT_ENV, "s3://orchbench-artifacts/")
    config = load_config(CONFIGS / "default.yaml")
    shipped = validate_config({"storage": {"artifact_root": "var/artifacts"}})
    assert shipped.storage.artifact_root == "s3://orchbench-artifacts/var/artifacts"
    for key in ROOTS:
        value = getattr(config.storage, key)
        assert value.startswith("s3://orchbench-artifacts/"), (key, value)
        assert "//" not in value.removeprefix("s3://")
    # Absolute paths and URLs in the config stay as given.
    fixed = validate_config(
        {"storage": {"artifact_root": "/data/a", "runs_root": "gs://other/runs"}}
    ).storage
    assert (fixed.artifact_root, fixed.runs_root) == ("/data/a", "gs://other/runs")
    assert fixed.registry_root == "s3://orchbench-artifacts/var/registry"
    # An explicit base wins over the variable (an adapter shipping a config to pods).
    based = load_config(CONFIGS / "default.yaml", storage_base="s3://bucket-b/pre").storage
    assert based.runs_root == "s3://bucket-b/pre/var/runs"


def test_without_the_variable_roots_stay_under_home(
    orchbench_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(storage.ARTIFACT_ROOT_ENV, "  ")
    config = small_config()
    assert config.storage.runs_root == str(orchbench_home / "var" / "runs")
    monkeypatch.setenv(storage.ARTIFACT_ROOT_ENV, "/srv/orchbench")
    assert small_config().storage.registry_root == "/srv/orchbench/var/registry"


@pytest.mark.parametrize("value", ["relative/dir", "s3://", "file://relative"])
def test_bad_artifact_root_names_the_variable(
    value: str, orchbench_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(storage.ARTIFACT_ROOT_ENV, value)
    with pytest.raises(ConfigError, match=r"\$ORCHBENCH_ARTIFACT_ROOT: expected a URL"):
        small_config()


def test_root_outside_the_base_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(storage.ARTIFACT_ROOT_ENV, "s3://bucket")
    with pytest.raises(ConfigError, match="leaves the storage base"):
        small_config(storage={"runs_root": "../elsewhere"})


@pytest.fixture
def bucket(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> str:
    """A bucket of this test's own on the session's server: ``s3://<bucket>``."""
    name = request.node.name.lower().replace("_", "-").replace("[", "-").strip("]-")[:50]
    return use_endpoint(monkeypatch, s3_endpoint, f"t-{name}")


def test_pipeline_keeps_everything_on_the_object_store(
    bucket: str, orchbench_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(storage.ARTIFACT_ROOT_ENV, bucket)
    config = small_config(model={"estimator": "logistic_regression"})
    assert config.storage.runs_root == f"{bucket}/var/runs"
    record = run_pipeline(config, run_id="cluster-like")
    assert record.status == "success", [s.error for s in record.steps]
    assert not (orchbench_home / "var").exists(), "nothing may land on the local disk"

    clear_memo()  # read back from S3, as another pod or the client would
    again = read_run_record(config.storage.runs_root, "cluster-like")
    assert again.model_dump() == record.model_dump()
    assert again.prediction_hash and again.metrics and again.registry["version"] == 1
    keys = {s.key for s in again.steps}
    assert {"ingest", "validate", "train[logistic_regression]", "register", "score"} <= keys
    assert [s.key for s in read_step_records(config.storage.runs_root, "cluster-like")] == [
        s.key for s in record.steps
    ]
    log = read_step_log(config.storage.runs_root, "cluster-like", "ingest", 1)
    assert log is not None and "ingest succeeded" in log
    dataset = ArtifactStore(config.storage.artifact_root).get_frame(
        record.attempts("ingest")[0].outputs["dataset"]
    )
    assert len(dataset) == record.attempts("ingest")[0].metadata["rows"]


def test_missing_or_bad_record_names_the_url(bucket: str) -> None:
    runs_root = f"{bucket}/var/runs"
    missing = re.escape(f"{bucket}/var/runs/nope/run.json: not found")
    with pytest.raises(RunRecordError, match=missing):
        read_run_record(runs_root, "nope")
    location = run_record_location(runs_root, "half")
    storage.write_text(location, '{"run_id": "half", "tool"')
    with pytest.raises(RunRecordError, match=re.escape(f"{location}: not a run record")):
        read_run_record(runs_root, "half")
    storage.write_text(location, json.dumps({"run_id": "half"}))
    with pytest.raises(RunRecordError, match=r"not a run record: .*validation error"):
        read_run_record(runs_root, "half")


def test_create_exclusive_has_one_winner(bucket: str, tmp_path: Path) -> None:
    for root in (f"{bucket}/excl", str(tmp_path)):
        location = storage.join(root, "one.json")
        with ThreadPoolExecutor(6) as pool:
            won = list(
                pool.map(storage.create_exclusive, [location] * 6, [b"%d" % i for i in range(6)])
            )
        assert won.count(True) == 1, (root, won)
        assert storage.read_bytes(location) == b"%d" % won.index(True)
        assert storage.list_names(root) == ["one.json"]


def test_seaweedfs_style_refusal_counts_as_taken() -> None:
    """SeaweedFS answers 412 without naming the condition (no ``Condition`` element), so
    s3fs raises a plain OSError, not FileExistsError: still a refused create."""
    from botocore.exceptions import ClientError
    from s3fs.errors import translate_boto_error

    response = {
        "Error": {"Code": "PreconditionFailed", "Message": "pre-conditions did not hold"},
        "ResponseMetadata": {"HTTPStatusCode": 412},
    }
    translated = translate_boto_error(ClientError(response, "PutObject"))
    assert not isinstance(translated, FileExistsError)
    assert storage._precondition_failed(translated)
    other = translate_boto_error(
        ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {}}, "PutObject")
    )
    assert not storage._precondition_failed(other)


def test_attempt_counter_on_the_object_store(bucket: str) -> None:
    runs_root = f"{bucket}/var/runs"
    with ThreadPoolExecutor(4) as pool:
        counted = list(pool.map(lambda _: count_attempt(runs_root, "r1", "train"), range(4)))
    assert sorted(counted) == [1, 2, 3, 4]
    assert count_attempt(runs_root, "r1", "train") == 5
    assert count_attempt(runs_root, "r1", "score") == 1


def test_command_line_run_prints_the_record_url(
    bucket: str, orchbench_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m shared_ml`` (a task process, a pod) with storage on the object store:
    it prints the record's URL, and the record reads back from there."""
    monkeypatch.setenv(storage.ARTIFACT_ROOT_ENV, f"{bucket}/cli")
    config = orchbench_home / "one.yaml"
    config.write_text("model: {estimator: logistic_regression}\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "shared_ml", "--config", str(config), "--run-id", "cli-run"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.strip().splitlines()[-1]
    assert printed == f"{bucket}/cli/var/runs/cli-run/run.json"
    assert load_run_record(printed).status == "success"
    assert not (orchbench_home / "var").exists()
