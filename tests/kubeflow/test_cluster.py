"""Cluster submission, offline: argument building and clear errors when the API is unreachable.

No KFP server can run here; the end-to-end kind workflow submits for real.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from croniter import croniter

from benchmarks.tools.kubeflow.adapter import KubeflowAdapter, KubeflowRunError
from pipelines.kubeflow.deploy import (
    ClusterError,
    check_reachable,
    cluster_config_json,
    kfp_cron,
    run_parameters,
)
from pipelines.kubeflow.ir import IR_PATH, version_name
from shared_ml.config import SCHEDULE_PRESETS
from shared_ml.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def not_kfp_server() -> Iterator[str]:
    """A real HTTP server that is not the KFP API: every GET is a 404."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize(
    ("cron", "expected"),
    [("0 3 * * *", "0 0 3 * * *"), ("*/15 * * * 1-5", "0 */15 * * * 1-5")],
)
def test_cron_gets_the_seconds_field_kfp_expects(cron: str, expected: str) -> None:
    assert kfp_cron(cron) == expected


def test_cron_with_the_wrong_number_of_fields_is_refused() -> None:
    with pytest.raises(ValueError, match="5-field"):
        kfp_cron("0 0 3 * * *")


def test_a_daily_preset_becomes_midnight_with_seconds() -> None:
    assert kfp_cron("@daily") == "0 0 0 * * *"


@pytest.mark.parametrize("preset", SCHEDULE_PRESETS)
def test_every_preset_fires_when_the_preset_itself_does(preset: str) -> None:
    # croniter reads the preset as Prefect does, and the 6-field cron seconds first as KFP does.
    start = datetime(2026, 1, 3, 7, 30, tzinfo=UTC)
    as_preset = croniter(preset, start)
    as_kfp = croniter(kfp_cron(preset), start, second_at_beginning=True)
    expected = [as_preset.get_next(datetime) for _ in range(5)]
    assert [as_kfp.get_next(datetime) for _ in range(5)] == expected
    assert kfp_cron(preset).split()[0] == "0"  # seconds first


@pytest.mark.parametrize("schedule", ["0 3 L * *", "0 3 * * 1#2", "0 3 15W * *", "@fortnightly"])
def test_a_schedule_kfp_cannot_read_is_refused_naming_it(schedule: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"schedule {schedule!r}")):
        kfp_cron(schedule)


def test_run_parameters_are_exactly_the_pipeline_inputs() -> None:
    ir = next(yaml.safe_load_all(IR_PATH.read_text(encoding="utf-8")))  # the pipeline spec
    params = run_parameters("{}", "run-1", 7, "", "2026-01-03")
    assert set(params) == set(ir["root"]["inputDefinitions"]["parameters"])
    assert params["logical_date"] == "2026-01-03"


def test_cluster_config_keeps_storage_relative_and_applies_the_seed(tmp_path: Path) -> None:
    source = tmp_path / "relative.yaml"
    source.write_text("seed: 1\nstorage: {artifact_root: var/a, runs_root: var/r}\n")
    config = json.loads(cluster_config_json(source, seed=7))
    assert config["seed"] == 7
    # Left for each pod to resolve; load_config would have made them this machine's paths.
    assert config["storage"] == {"artifact_root": "var/a", "runs_root": "var/r"}


def test_cluster_config_names_the_bad_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {estimator: linear_svm}\n")
    with pytest.raises(ConfigError, match=r"model\.estimator"):
        cluster_config_json(bad)


def test_version_name_follows_the_ir_content() -> None:
    text = IR_PATH.read_text(encoding="utf-8")
    assert version_name(text) == version_name(text)
    assert version_name(text) != version_name(text + "\n")


def test_unreachable_host_is_a_clear_error() -> None:
    url = closed_port_url()
    with pytest.raises(ClusterError, match=f"cannot reach the KFP API at {url}"):
        check_reachable(url, timeout_s=5)


def test_a_server_that_is_not_kfp_is_a_clear_error(not_kfp_server: str) -> None:
    with pytest.raises(ClusterError, match="answered 404 on /apis/v2beta1/healthz"):
        check_reachable(not_kfp_server)


def test_submit_command_refuses_a_bad_date() -> None:
    command = [sys.executable, "-m", "pipelines.kubeflow.deploy", "--url", closed_port_url()]
    command += ["--config", str(DEFAULT_CONFIG), "--run-id", "offline", "--date", "2026-13-01"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "--date" in done.stderr and "YYYY-MM-DD" in done.stderr
    assert "Traceback" not in done.stderr


def test_submit_command_exits_2_with_one_line_when_unreachable() -> None:
    url = closed_port_url()
    command = [sys.executable, "-m", "pipelines.kubeflow.deploy", "--url", url]
    command += ["--config", str(DEFAULT_CONFIG), "--run-id", "offline"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith(f"error: cannot reach the KFP API at {url}")
    assert "Traceback" not in done.stderr


def test_adapter_reports_an_unreachable_cluster(
    kfp_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHBENCH_ARTIFACT_ROOT", "s3://orchbench-artifacts")  # as infra's
    adapter = KubeflowAdapter(target="cluster", url=closed_port_url())
    assert adapter.execution_model == "pod-per-step"
    with pytest.raises(KubeflowRunError, match="cannot reach the KFP API"):
        adapter.run_pipeline(DEFAULT_CONFIG, run_id="offline")


def test_adapter_needs_a_url_for_the_cluster_target() -> None:
    with pytest.raises(ValueError, match="--url"):
        KubeflowAdapter(target="cluster")
