"""Fixtures of the Kubeflow suite: a private ORCHBENCH_HOME per session, a webhook receiver and
an SMTP server on 127.0.0.1, and the few real local KFP runs that several tests inspect.

Local runs are expensive here (each task is a fresh Python process that imports kfp, pandas
and scikit-learn), so a run is made once per session and each test asserts one property of it:
``clean_run`` on configs/default.yaml, and ``failed_run`` then ``resumed_run`` on
configs/daily.yaml for one fixed date (the resumed run is the complete daily run). Both runs
are made with e-mail alerts configured (``smtp``), so the exit handler's e-mail is observed on
the failed run and its absence on the clean one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from benchmarks.tools.kubeflow.adapter import KubeflowAdapter
from shared_ml.notify import ALERT_FROM_ENV, ALERT_TO_ENV, SMTP_HOST_ENV, SMTP_PORT_ENV
from shared_ml.records import RunRecord
from tests.smtp import SmtpServer
from tests.webhook import WebhookReceiver

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"
DAILY_CONFIG = REPO_ROOT / "configs" / "daily.yaml"
DAILY_DATE = date(2026, 1, 3)


def link_partitions(home: Path) -> None:
    """configs/daily.yaml's relative URL resolves under ORCHBENCH_HOME: give a private home
    the repo's daily partitions."""
    (home / "configs").mkdir(exist_ok=True)
    (home / "configs" / "data").symlink_to(REPO_ROOT / "configs" / "data")


@pytest.fixture(scope="session")
def kfp_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """ORCHBENCH_HOME for the whole session: artifacts, runs and var/kubeflow land in tmp."""
    home = tmp_path_factory.mktemp("kfp-home")
    link_partitions(home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORCHBENCH_HOME", str(home))
        patch.delenv("ORCHBENCH_FAULTS", raising=False)
        patch.delenv("ORCHBENCH_WEBHOOK_URL", raising=False)
        yield home


@pytest.fixture(scope="session")
def webhook() -> Iterator[WebhookReceiver]:
    """One receiver for the session: runs are shared, so tests pick theirs with ``for_run``."""
    with WebhookReceiver() as receiver:
        yield receiver


ALERT_TO = "ml-platform@example.test"


@pytest.fixture(scope="session")
def smtp(kfp_home: Path) -> Iterator[SmtpServer]:
    """An SMTP server for the session, configured for e-mail alerts through the environment,
    which every process of a local run inherits down to the exit handler's component."""
    with SmtpServer() as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv(SMTP_HOST_ENV, server.host)
        patch.setenv(SMTP_PORT_ENV, str(server.port))
        patch.setenv(ALERT_TO_ENV, ALERT_TO)
        patch.setenv(ALERT_FROM_ENV, "kfp@example.test")
        yield server


@pytest.fixture(scope="session")
def adapter(kfp_home: Path, webhook: WebhookReceiver) -> KubeflowAdapter:
    return KubeflowAdapter(webhook_url=webhook.url)


@pytest.fixture(scope="session")
def clean_run(kfp_home: Path, webhook: WebhookReceiver, smtp: SmtpServer) -> RunRecord:
    """A full run through the ``orchbench`` CLI (``--json``), with one transient fault in
    ``train`` (so in every candidate's branch) that KFP's retry must absorb. Uses the core env's CLI when it exists (the
    normal layout: no kfp there), else this env's copy of the same CLI."""
    import subprocess
    import sys

    core_cli = REPO_ROOT / ".venvs" / "core" / "bin" / "orchbench"
    cli = [str(core_cli)] if core_cli.exists() else [sys.executable, "-m", "benchmarks.cli"]
    command = [*cli, "run", "--tool", "kubeflow", "--config", str(DEFAULT_CONFIG)]
    command += ["--run-id", "kfp-clean", "--fault", "train:transient_attempts=1", "--json"]
    env = {**os.environ, "ORCHBENCH_WEBHOOK_URL": webhook.url}
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, f"orchbench run failed ({done.returncode}): {done.stderr[-3000:]}"
    return RunRecord.model_validate_json(done.stdout)


@pytest.fixture(scope="session")
def failed_run(adapter: KubeflowAdapter, smtp: SmtpServer) -> RunRecord:
    """A daily run whose select step (the fan-in) raises a NonRetryableError every time."""
    return adapter.run_pipeline(
        DAILY_CONFIG,
        run_id="kfp-hard-failure",
        faults={"select": {"non_retryable": True}},
        logical_date=DAILY_DATE,
    )


@pytest.fixture(scope="session")
def resumed_run(adapter: KubeflowAdapter, failed_run: RunRecord) -> RunRecord:
    """The failed run re-submitted, fault gone, caching on: the complete daily run."""
    return adapter.resume_pipeline(failed_run, DAILY_CONFIG)
