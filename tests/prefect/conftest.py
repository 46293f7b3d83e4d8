"""One real Prefect server + process worker for the whole session, started by orchbench's
own service manager on a free port with a temporary Prefect home and ORCHBENCH_HOME, and
always stopped (process groups, SIGTERM then SIGKILL) at the end. A real SMTP server on
127.0.0.1 is up before them, so every Prefect process (the worker and the hook processes
it starts too) e-mails its alerts there; one clean run serves the tests that read a
finished run back (task runs, artifacts, the UI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from benchmarks.environments import REPO_ROOT
from benchmarks.tools.prefect.adapter import PrefectAdapter
from benchmarks.tools.prefect.client import PrefectClient
from benchmarks.tools.prefect.services import HOME_ENV, PrefectServices, ServicesState, free_port
from shared_ml.config import load_config
from shared_ml.notify import ALERT_TO_ENV, SMTP_HOST_ENV, SMTP_PORT_ENV
from shared_ml.records import RunRecord
from tests.smtp import SmtpServer

# 01-03 is the first model (promoted), 01-04 beats it, 01-09 does not: by the plain runner.
BACKFILL_DATES = [date(2026, 1, 3), date(2026, 1, 4), date(2026, 1, 9)]
ALERT_RECIPIENT = "platform-team@example.test"


@pytest.fixture(scope="session")
def orchbench_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Artifacts, registry, run records and Prefect results of this session only; with a
    copy of the daily partitions, which configs/daily.yaml names relative to the home."""
    home = tmp_path_factory.mktemp("orchbench-home")
    shutil.copytree(REPO_ROOT / "configs" / "data" / "daily", home / "configs" / "data" / "daily")
    saved = {k: os.environ.get(k) for k in ("ORCHBENCH_HOME", HOME_ENV, "ORCHBENCH_WEBHOOK_URL")}
    os.environ["ORCHBENCH_HOME"] = str(home)
    os.environ[HOME_ENV] = str(home / "prefect")
    os.environ.pop("ORCHBENCH_WEBHOOK_URL", None)
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def config_path() -> Path:
    """The default config (its cron schedule becomes the deployment's schedule)."""
    return REPO_ROOT / "configs" / "default.yaml"


@pytest.fixture(scope="session")
def daily_config_path() -> Path:
    """The partitioned config: one CSV per logical date."""
    return REPO_ROOT / "configs" / "daily.yaml"


@pytest.fixture(scope="session")
def smtp(orchbench_home: Path) -> Iterator[SmtpServer]:
    """Started before the services: their processes inherit where to e-mail alerts."""
    settings = {
        SMTP_HOST_ENV: SmtpServer.host,
        ALERT_TO_ENV: ALERT_RECIPIENT,
    }
    with SmtpServer() as server:
        saved = {k: os.environ.get(k) for k in (*settings, SMTP_PORT_ENV)}
        os.environ.update({**settings, SMTP_PORT_ENV: str(server.port)})
        try:
            yield server
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@pytest.fixture(scope="session")
def services(orchbench_home: Path, config_path: Path, smtp: SmtpServer) -> Iterator[ServicesState]:
    manager = PrefectServices(orchbench_home / "prefect")
    try:
        state = manager.up(port=free_port(), profile="tuned", deploy_config=str(config_path))
        yield state
    finally:
        manager.down()


@pytest.fixture(scope="session")
def client(services: ServicesState) -> Iterator[PrefectClient]:
    with PrefectClient(services.api_url) as c:
        yield c


@pytest.fixture(scope="session")
def adapter(services: ServicesState, orchbench_home: Path) -> PrefectAdapter:
    """The default path, as the benchmark drives it: the deployment and the worker."""
    return PrefectAdapter(profile="tuned", home=orchbench_home / "prefect")


@pytest.fixture(scope="session")
def in_process_adapter(services: ServicesState, orchbench_home: Path) -> PrefectAdapter:
    """The other path: the flow in a subprocess of this test's environment (so settings
    made in the test process, e.g. a webhook URL, reach the flow; not the worker's)."""
    return PrefectAdapter(profile="tuned", home=orchbench_home / "prefect", mode="in-process")


@pytest.fixture(scope="session")
def deployment_adapter(services: ServicesState, orchbench_home: Path) -> PrefectAdapter:
    return PrefectAdapter(profile="tuned", home=orchbench_home / "prefect", mode="deployment")


@pytest.fixture(scope="session")
def cluster_adapter(
    services: ServicesState, tmp_path_factory: pytest.TempPathFactory
) -> PrefectAdapter:
    """An adapter given the session's server by URL, as ``--url`` gives one (its home must
    stay unused). Not ``--target cluster``: that path registers the deployments on a
    Kubernetes work pool, which no worker here serves, and needs the object store
    (tests/benchmarks/test_cluster_prefect.py covers it against a fake cluster)."""
    unused = tmp_path_factory.mktemp("cluster-target") / "unused"
    return PrefectAdapter(target="local", url=services.api_url, home=unused)


@pytest.fixture(scope="session")
def backfill_dates() -> list[date]:
    return list(BACKFILL_DATES)


@pytest.fixture(scope="session")
def backfill(
    cluster_adapter: PrefectAdapter, daily_config_path: Path, backfill_dates: list[date]
) -> list[RunRecord]:
    """configs/daily.yaml backfilled over the dates through the deployment, by the
    cluster-target adapter (one set of runs serves the backfill and cluster tests)."""
    return cluster_adapter.backfill(daily_config_path, backfill_dates)


@pytest.fixture(scope="session")
def cli_run(services: ServicesState, config_path: Path) -> RunRecord:
    """One clean run through the orchbench CLI, on its default path: a flow run of the
    deployment, run by the session's worker.

    Its only fault is a barrier on train, so that the candidate branches' overlap is
    observed however quickly a branch's work ends (see shared_ml.faults.wait_at_barrier).
    It goes in with ``--fault`` (the flow run's parameters): the worker's flow-run process
    never sees this test's environment, so ``$ORCHBENCH_FAULTS`` would not reach it.
    """
    barrier = f"train:barrier={len(load_config(config_path).candidate_names)}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.cli",
            "run",
            "--tool",
            "prefect",
            "--config",
            str(config_path),
            "--run-id",
            "prefect-clean",
            "--fault",
            barrier,
            "--json",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return RunRecord.model_validate_json(done.stdout)
