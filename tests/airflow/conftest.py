"""Real Airflow for the whole session: api-server, scheduler and dag-processor on free
ports in a temporary AIRFLOW_HOME, started and always stopped by the project's own service
manager (``benchmarks.tools.airflow.services``). Nothing here mocks Airflow.

Failure e-mails are on for the whole session: an SMTP server on 127.0.0.1 (aiosmtpd,
``tests/smtp.py``) is started first and the services get ``ORCHBENCH_SMTP_*`` and
``ORCHBENCH_ALERT_EMAIL_TO``, as a user's shell would give ``orchbench airflow up``.

Settings differ from the defaults only where a test would otherwise wait minutes: the
``tuned+preload`` profile (``tuned`` plus the scheduler's preload of the pipeline's modules,
which saves every task process seconds of imports), a task heartbeat timeout of seconds so
a SIGKILLed worker is found, and
schedules on: with catchup off, the scheduler creates the run of the latest complete
interval of the ML DAG's schedule (``configs/default.yaml``: ``0 3 * * *``) as soon as it
sees the DAG, which ``test_triggers`` observes (asset events need schedules on too).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Airflow reads AIRFLOW_HOME when it is first imported (DagBag tests import it in-process):
# point it at a private folder before any test module does, so ~/airflow is never touched.
_IN_PROCESS_HOME = Path(tempfile.mkdtemp(prefix="orchbench-airflow-inproc-"))
os.environ["AIRFLOW_HOME"] = str(_IN_PROCESS_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"

from benchmarks.tools.airflow.adapter import AirflowAdapter  # noqa: E402
from benchmarks.tools.airflow.client import AirflowClient  # noqa: E402
from benchmarks.tools.airflow.services import (  # noqa: E402
    AirflowServices,
    ServiceSettings,
    free_port,
)
from shared_ml.config import PipelineConfig, load_config  # noqa: E402
from shared_ml.records import RunRecord, StepRecord, read_step_records  # noqa: E402
from tests.smtp import SmtpServer  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"
DAILY_CONFIG = REPO_ROOT / "configs" / "daily.yaml"
ML_DAG = "orchbench_ml"
ALERT_EMAIL_TO = "ml-oncall@example.test"

# Seconds, not minutes: a killed task must be noticed while the test waits.
TEST_SETTINGS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
    # No test changes a DAG file once it is parsed, and re-parsing every file each 10 s (the
    # tuned profile) kept an idle instance at about 7% of a core here: in the two lanes of
    # `make test` every CPU second counts. New files are still found within 10 s.
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_IN_PROCESS_HOME, ignore_errors=True)


@dataclass
class AirflowTestInstance:
    services: AirflowServices
    client: AirflowClient
    orchbench_home: Path
    template_db: Path  # a freshly migrated, empty metadata DB, for more private installs
    root: Path
    smtp: SmtpServer  # receives the services' failure e-mails (to ALERT_EMAIL_TO)

    @property
    def home(self) -> Path:
        return self.services.settings.home

    def config(self, path: Path = DEFAULT_CONFIG, **overrides: Any) -> PipelineConfig:
        return load_config(path, **overrides)

    def step_records(self, run_id: str) -> list[StepRecord]:
        return read_step_records(self.config().storage.runs_root, run_id)

    def registry_index(self, config_path: Path = DEFAULT_CONFIG) -> dict[str, Any]:
        config = self.config(config_path)
        path = Path(config.storage.registry_root) / config.name / "index.json"
        return json.loads(path.read_text()) if path.exists() else {"versions": []}


def _snapshot_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite DB, even while it is in use (backup API)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def _say(notes: list[str]) -> None:
    for note in notes:
        print(f"\n[airflow test session] {note}")


@pytest.fixture(scope="session")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowTestInstance]:
    root = tmp_path_factory.mktemp("airflow-session")
    orchbench_home = root / "orchbench"
    orchbench_home.mkdir()
    # Relative data URLs (configs/daily.yaml's partitions) resolve against ORCHBENCH_HOME.
    (orchbench_home / "configs").symlink_to(REPO_ROOT / "configs")
    previous_home = os.environ.get("ORCHBENCH_HOME")
    # This process (baseline runs, record reads) and the Airflow workers share one store.
    os.environ["ORCHBENCH_HOME"] = str(orchbench_home)
    smtp = SmtpServer().__enter__()
    settings = ServiceSettings(
        home=root / "airflow_home",
        port=free_port(),
        profile="tuned+preload",
        schedules=True,
        extra_env={
            **TEST_SETTINGS,
            "ORCHBENCH_HOME": str(orchbench_home),
            "ORCHBENCH_SMTP_HOST": smtp.host,
            "ORCHBENCH_SMTP_PORT": str(smtp.port),
            "ORCHBENCH_ALERT_EMAIL_TO": ALERT_EMAIL_TO,
        },
        health_timeout_s=300,
    )
    services = AirflowServices(settings)
    try:
        services.migrate()
        template_db = root / "template.db"
        _snapshot_sqlite(settings.home / "airflow.db", template_db)
        services.start()
        client = AirflowClient(
            settings.url,
            airflow_home=settings.home,
            timeout_s=60,
            watchdog=lambda: _say(services.revive_crashed()),  # as the adapter's does
        )
        client.wait_for_dag(ML_DAG, timeout_s=300)
        yield AirflowTestInstance(services, client, orchbench_home, template_db, root, smtp)
        client.close()
    finally:
        services.stop()
        smtp.__exit__(None, None, None)
        if previous_home is None:
            os.environ.pop("ORCHBENCH_HOME", None)
        else:
            os.environ["ORCHBENCH_HOME"] = previous_home


@pytest.fixture(scope="session")
def client(airflow: AirflowTestInstance) -> AirflowClient:
    return airflow.client


def run_ml(
    airflow: AirflowTestInstance,
    run_id: str,
    *,
    faults: dict[str, dict[str, Any]] | None = None,
    timeout_s: float = 420,
) -> dict[str, Any]:
    """Trigger the ML DAG through the REST API and wait until the run ends."""
    conf: dict[str, Any] = {"config_path": str(DEFAULT_CONFIG)}
    if faults:
        conf["faults"] = faults
    airflow.client.trigger(ML_DAG, run_id=run_id, conf=conf)
    return airflow.client.wait_for_run(ML_DAG, run_id, timeout_s=timeout_s)


# train fails once in every branch (retried: two attempts each), register succeeds (an
# event of the model asset), score fails without retry: the run fails and alerts.
OBSERVED_FAULTS = {"train": {"transient_attempts": 1}, "score": {"non_retryable": True}}


@pytest.fixture(scope="session")
def observed_run(airflow: AirflowTestInstance) -> RunRecord:
    """One run, through the adapter as `orchbench run --tool airflow` makes it, that the
    monitoring tests (logs, per-step figures, the model asset, the failure e-mail) and the
    UI test all read: runs are the expensive part of this suite."""
    adapter = AirflowAdapter(settings=airflow.services.settings)
    return adapter.run_pipeline(
        DEFAULT_CONFIG, run_id=f"test-observed-{uuid.uuid4().hex[:8]}", faults=OBSERVED_FAULTS
    )
