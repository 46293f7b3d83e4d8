"""Code tier: the artifact store and a whole pipeline on S3, against a real S3 API.

moto's server plays S3 on 127.0.0.1; s3fs talks to it through the standard
AWS_ENDPOINT_URL setting, exactly as it would talk to AWS or MinIO.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared_ml.artifacts import ArtifactStore, clear_memo
from shared_ml.runner import run_pipeline
from tests.unit.helpers import small_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("moto server did not start within 60 s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for key, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    if not fs.exists("orchbench-test"):
        fs.mkdir("orchbench-test")
    return "s3://orchbench-test"


def test_pipeline_with_artifacts_on_s3(s3_env: str, orchbench_home: Path) -> None:
    config = small_config(
        storage={
            "artifact_root": f"{s3_env}/artifacts",
            "registry_root": "var/registry",
            "runs_root": "var/runs",
        }
    )
    record = run_pipeline(config)
    assert record.status == "success", [s.error for s in record.steps]
    model_uri = record.attempts("train")[0].outputs["model"]
    assert model_uri.startswith("s3://orchbench-test/artifacts/models/")
    import s3fs

    listed = s3fs.S3FileSystem().find("orchbench-test/artifacts")
    assert len(listed) >= 8 and not [p for p in listed if ".tmp-" in p]
    # Read the dataset back from S3 itself, not from the in-process memo: the remote path
    # tells the frame's format from its first bytes through a seekable fsspec file.
    clear_memo()
    dataset_uri = record.attempts("ingest")[0].outputs["dataset"]
    dataset = ArtifactStore(f"{s3_env}/artifacts").get_frame(dataset_uri)
    assert len(dataset) == record.attempts("ingest")[0].metadata["rows"]
    assert config.data.target in dataset.columns
    again = run_pipeline(config)
    assert again.prediction_hash == record.prediction_hash
    assert len(s3fs.S3FileSystem().find("orchbench-test/artifacts")) == len(listed)
    assert os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
