"""One local Airflow install: the settings it is started with, the state its supervisor
recorded, its API's health report and the admin login Airflow generated."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.environments import REPO_ROOT
from benchmarks.services.postgres import Database, PostgresError, check_database
from benchmarks.services.supervisor import (
    ProcessRecord,
    SupervisedState,
    Supervisor,
    SupervisorError,
)
from benchmarks.tools.profiles import profiles_of, task_concurrency

COMPONENTS = ("api-server", "scheduler", "dag-processor")
# A profile named in benchmarks/tools/airflow/profiles.yaml (PROFILES).
Profile = str
PROFILES: tuple[str, ...] = profiles_of("airflow")
DEFAULT_HOME = REPO_ROOT / "var" / "airflow"
DEFAULT_PORT = 8080
DAGS_FOLDER = REPO_ROOT / "pipelines" / "airflow"
# The task concurrency every tool gets (benchmarks/tools/concurrency.yaml, 4): at least
# the 3 candidates of the bundled configs. Airflow's default, 32, starts 32 LocalExecutor
# worker processes (about 1.5 GB); each worker is a process, so keep it small on 2 cores.
DEFAULT_PARALLELISM = task_concurrency("airflow")


class ServiceError(RuntimeError):
    """The Airflow services could not be started, reached or stopped."""


ComponentProcess = ProcessRecord  # one component as the state file records it


@dataclass
class ServiceSettings:
    """Everything that decides how the services are started."""

    home: Path = DEFAULT_HOME
    port: int = DEFAULT_PORT
    profile: Profile = "defaults"
    # The metadata DB: SQLite in AIRFLOW_HOME (as shipped), or a PostgreSQL the services
    # start themselves in AIRFLOW_HOME/postgres; db_url instead names one run elsewhere.
    database: Database = "sqlite"
    db_url: str | None = None
    parallelism: int = DEFAULT_PARALLELISM  # core.parallelism = max_active_tasks_per_dag
    # [scheduler] use_job_schedule: the scheduler creates runs by itself (the DAGs'
    # schedules, asset events). Off by default: a benchmark or demo sees only its own runs.
    schedules: bool = False
    dags_folder: Path = DAGS_FOLDER
    # Extra AIRFLOW__* (or any) variables, applied last: tests shorten heartbeats this way.
    extra_env: dict[str, str] = field(default_factory=dict)
    health_timeout_s: float = 180.0
    stop_timeout_s: float = 20.0

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            expected = ", ".join(PROFILES)
            raise ServiceError(f"profile {self.profile!r}: expected one of {expected}")
        try:
            check_database(self.database, "database (--db, ORCHBENCH_AIRFLOW_DB)")
        except PostgresError as err:
            raise ServiceError(str(err)) from None
        if self.db_url and self.database == "postgres":
            raise ServiceError(
                "give either a database URL (--db-url, ORCHBENCH_AIRFLOW_DB_URL) or "
                "--db postgres (a PostgreSQL started with the services), not both"
            )
        self.home = Path(self.home).resolve()

    @classmethod
    def from_env(cls, **overrides: Any) -> ServiceSettings:
        """Defaults, then ``ORCHBENCH_AIRFLOW_*`` variables, then explicit non-None overrides."""
        values: dict[str, Any] = {}
        env = os.environ
        if env.get("ORCHBENCH_AIRFLOW_HOME"):
            values["home"] = Path(env["ORCHBENCH_AIRFLOW_HOME"])
        if env.get("ORCHBENCH_AIRFLOW_PORT"):
            values["port"] = int(env["ORCHBENCH_AIRFLOW_PORT"])
        if env.get("ORCHBENCH_AIRFLOW_PROFILE"):
            values["profile"] = env["ORCHBENCH_AIRFLOW_PROFILE"]
        if env.get("ORCHBENCH_AIRFLOW_DB"):
            values["database"] = env["ORCHBENCH_AIRFLOW_DB"]
        if env.get("ORCHBENCH_AIRFLOW_DB_URL"):
            values["db_url"] = env["ORCHBENCH_AIRFLOW_DB_URL"]
        if env.get("ORCHBENCH_AIRFLOW_SCHEDULES"):
            values["schedules"] = env["ORCHBENCH_AIRFLOW_SCHEDULES"].lower() in ("1", "true", "yes")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def state_file(self) -> Path:
        return self.run_dir / "services.json"

    @property
    def passwords_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json.generated"

    def log_file(self, component: str) -> Path:
        return self.home / "logs" / "services" / f"{component}.log"


@dataclass
class ServiceState:
    """What ``services.json`` says: the components, and how they were started."""

    url: str
    port: int
    profile: str
    home: str
    started_at: float
    components: dict[str, ComponentProcess] = field(default_factory=dict)
    healthy_at: float | None = None
    migrate_s: float | None = None
    orchbench_home: str | None = None  # where the workers write artifacts and run records
    database: str | None = None  # the metadata DB's URL, password redacted
    database_process: ProcessRecord | None = None  # PostgreSQL, when the services run it

    @classmethod
    def from_supervised(cls, supervised: SupervisedState) -> ServiceState:
        details = supervised.details
        try:
            return cls(
                **{k: details[k] for k in ("url", "port", "profile", "home", "started_at")},
                components={p.name: p for p in supervised.processes if p.name in COMPONENTS},
                **{
                    k: details.get(k)
                    for k in ("healthy_at", "migrate_s", "orchbench_home", "database")
                },
                database_process=supervised.get("postgres"),
            )
        except KeyError as err:
            raise ServiceError(f"service state lacks {err}; stop the services and retry") from None

    @classmethod
    def load(cls, path: Path) -> ServiceState | None:
        try:
            supervised = Supervisor(path).read()
        except SupervisorError as err:
            raise ServiceError(str(err)) from None
        return None if supervised is None else cls.from_supervised(supervised)

    @property
    def cold_start_s(self) -> float | None:
        return None if self.healthy_at is None else self.healthy_at - self.started_at


def health(url: str, timeout_s: float = 5.0) -> dict[str, Any] | None:
    """``/api/v2/monitor/health`` as JSON, or None if the API does not answer."""
    try:
        response = httpx.get(f"{url}/api/v2/monitor/health", timeout=timeout_s)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def is_healthy(report: dict[str, Any] | None) -> bool:
    """API up, database reachable, scheduler and dag-processor heartbeating."""
    if not report:
        return False
    return all(
        (report.get(part) or {}).get("status") == "healthy"
        for part in ("metadatabase", "scheduler", "dag_processor")
    )


def status_report(home: Path, state: ServiceState | None, running: set[str]) -> dict[str, Any]:
    """What ``orchbench airflow status`` shows: the recorded processes, which of them run,
    the database (password redacted) and the API's health report."""
    report = health(state.url) if state else None
    return {
        "home": str(home),
        "url": state.url if state else None,
        "profile": state.profile if state else None,
        "database": state.database if state else None,
        "database_process": {
            "pid": state.database_process.pid,
            "running": state.database_process.alive(),
        }
        if state and state.database_process
        else None,
        "components": {
            name: {
                "pid": state.components[name].pid if state and name in state.components else None,
                "running": name in running,
            }
            for name in COMPONENTS
        },
        "healthy": is_healthy(report),
        "health": report,
    }


# The user Airflow's simple auth manager creates (``[core] simple_auth_manager_users``).
ADMIN_USER = "admin"


def admin_password(home: Path) -> str:
    """The simple auth manager's generated admin password (``admin`` user)."""
    path = Path(home) / "simple_auth_manager_passwords.json.generated"
    try:
        passwords = json.loads(path.read_text())
    except FileNotFoundError:
        raise ServiceError(
            f"{path} not found: start the services first (orchbench airflow up)"
        ) from None
    except json.JSONDecodeError as err:
        raise ServiceError(f"{path}: not valid JSON ({err})") from None
    if "admin" not in passwords:
        raise ServiceError(f"{path}: no password for user 'admin' (users: {sorted(passwords)})")
    return passwords["admin"]
