"""Local Airflow services: api-server, scheduler and dag-processor as separate processes.

They run under the project's one supervisor (``benchmarks.services.supervisor``): each
component leads its own process group, so stopping it also stops the LocalExecutor workers
and task processes it forked, and ``$AIRFLOW_HOME/run/services.json`` records what runs, so
``orchbench airflow down`` works from another shell.

This module runs in the core environment: it starts the ``airflow`` program of the
airflow environment and never imports Airflow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from filelock import FileLock

from benchmarks.environments import tool_bin, tool_env
from benchmarks.services.postgres import EmbeddedPostgres, PostgresError, redact
from benchmarks.services.processes import accepts_connections, exit_note, tail
from benchmarks.services.secret_files import persistent_secret
from benchmarks.services.supervisor import (
    SupervisedState,
    Supervisor,
    SupervisorError,
    free_port,
    port_is_free,
    pss_bytes,
    run_to_completion,
    signals_as_interrupts,
)
from benchmarks.tools.airflow.alerting import smtp_connection
from benchmarks.tools.airflow.install import (
    ADMIN_USER,
    COMPONENTS,
    DAGS_FOLDER,
    DEFAULT_HOME,
    DEFAULT_PARALLELISM,
    DEFAULT_PORT,
    PROFILES,
    ComponentProcess,
    Profile,
    ServiceError,
    ServiceSettings,
    ServiceState,
    admin_password,
    health,
    is_healthy,
    status_report,
)
from benchmarks.tools.profiles import settings as profile_settings

# Re-exported: callers (adapter, tests) import them from here.
__all__ = [
    "ADMIN_USER",
    "COMPONENTS",
    "DAGS_FOLDER",
    "DEFAULT_HOME",
    "DEFAULT_PARALLELISM",
    "DEFAULT_PORT",
    "PROFILES",
    "ComponentProcess",
    "Profile",
    "ServiceError",
    "ServiceSettings",
    "ServiceState",
    "admin_password",
    "free_port",
    "health",
    "is_healthy",
    "pss_bytes",
    "signals_as_interrupts",
]

AIRFLOW_DATABASE = "airflow"  # database and role in the services' own PostgreSQL
# Each profile's settings (base, task concurrency, knobs) are data, with their reasons and
# documentation: benchmarks/tools/airflow/profiles.yaml (benchmarks.tools.profiles).
# The labelled variant "tuned+preload" adds this variable: see PRELOAD_SETTINGS.
PRELOAD_VARIABLE = "ORCHBENCH_AIRFLOW_PRELOAD"

# Written to $AIRFLOW_HOME/config/airflow_local_settings.py for a profile that sets
# PRELOAD_VARIABLE (tuned+preload: a trick for this pipeline, not an Airflow setting);
# Airflow imports that module in every one of its processes at start-up.
PRELOAD_SETTINGS = """\
# Written by orchbench (profile "tuned+preload"); removed again by any other profile.
# LocalExecutor forks its workers from the scheduler, and each task process from a worker:
# modules imported here, in the scheduler only, are inherited by every task process, which
# then parses its DAG file in milliseconds instead of re-importing pandas and scikit-learn.
import importlib
import os
import sys

if "scheduler" in sys.argv[1:2]:
    for _module in filter(None, os.environ.get("ORCHBENCH_AIRFLOW_PRELOAD", "").split(",")):
        importlib.import_module(_module)
"""


def airflow_env(settings: ServiceSettings) -> dict[str, str]:
    """The environment every Airflow process of this install gets."""
    home = settings.home
    env = tool_env()
    env.update(profile_settings("airflow", settings.profile))
    secrets_dir = home / "secrets"
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_folder),
            "AIRFLOW__CORE__PARALLELISM": str(settings.parallelism),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(settings.parallelism),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{settings.url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(settings.port),
            "AIRFLOW__API__BASE_URL": settings.url,
            "AIRFLOW__API_AUTH__JWT_SECRET": persistent_secret(secrets_dir / "jwt_secret"),
            "AIRFLOW__API__SECRET_KEY": persistent_secret(secrets_dir / "api_secret_key"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url(settings),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(home / "dag_bundles"),
            # Never bind Airflow's fixed default ports: other installs run beside this one.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = str(settings.schedules)
    env.update(settings.extra_env)
    try:
        env.update(smtp_connection(env))
    except ValueError as err:
        raise ServiceError(f"e-mail alerts for Airflow: {err}") from None
    return env


def database_url(settings: ServiceSettings) -> str:
    """The metadata DB's SQLAlchemy URL (with its password)."""
    if settings.db_url:
        return settings.db_url
    if settings.database == "postgres":
        try:
            return EmbeddedPostgres(settings.home).url(AIRFLOW_DATABASE, driver="psycopg2")
        except PostgresError as err:
            raise ServiceError(str(err)) from None
    return f"sqlite:///{settings.home / 'airflow.db'}"


def component_command(component: str, settings: ServiceSettings) -> list[str]:
    airflow = str(tool_bin("airflow", "airflow"))
    if component == "api-server":
        return [airflow, "api-server", "--host", "127.0.0.1", "--port", str(settings.port)]
    if component == "scheduler":
        # Task logs are read from the local folder; no log-serving process on a public port.
        return [airflow, "scheduler", "--skip-serve-logs"]
    if component == "dag-processor":
        return [airflow, "dag-processor"]
    raise ServiceError(f"unknown component {component!r}; expected one of {COMPONENTS}")


# The components a deployment restarts when they exit (the API server's clients notice
# its absence at once; these two fail silently: runs just stop moving).
RESTARTED_ON_EXIT = ("scheduler", "dag-processor")


class AirflowServices:
    """Start, inspect and stop one local Airflow install (one AIRFLOW_HOME)."""

    def __init__(self, settings: ServiceSettings | None = None) -> None:
        self.settings = settings or ServiceSettings.from_env()
        self.supervisor = Supervisor(self.settings.state_file)

    def _locked(self) -> FileLock:
        """One start/stop at a time per AIRFLOW_HOME, across shells."""
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.settings.run_dir / ".services.lock"), timeout=300)

    # --- queries ----------------------------------------------------------------------
    def state(self) -> ServiceState | None:
        return ServiceState.load(self.settings.state_file)

    def running_components(self) -> dict[str, ComponentProcess]:
        running = self.supervisor.running()
        return {name: running[name] for name in COMPONENTS if name in running}

    def is_running(self) -> bool:
        return len(self.running_components()) == len(COMPONENTS)

    def pids(self, include_children: bool = True) -> list[int]:
        return self.supervisor.pids(include_descendants=include_children)

    def status(self) -> dict[str, Any]:
        return status_report(self.settings.home, self.state(), set(self.running_components()))

    # --- lifecycle --------------------------------------------------------------------
    def migrate(self, env: dict[str, str] | None = None, timeout_s: float = 600.0) -> float:
        """``airflow db migrate``; returns the seconds it took."""
        if self.settings.database == "postgres" and "postgres" not in self.supervisor.running():
            raise ServiceError(
                f"the PostgreSQL of {self.settings.home} is not running: `airflow db migrate` "
                "needs it (orchbench airflow up --db postgres starts it, then migrates)"
            )
        started = time.monotonic()
        self.settings.home.mkdir(parents=True, exist_ok=True)
        try:
            run_to_completion(
                [str(tool_bin("airflow", "airflow")), "db", "migrate"],
                env=env or airflow_env(self.settings),
                log=self.settings.log_file("db-migrate"),
                timeout_s=timeout_s,
                what="airflow db migrate",
            )
        except SupervisorError as err:
            raise ServiceError(str(err)) from None
        return time.monotonic() - started

    def start(self, on_progress: Callable[[str], None] | None = None) -> ServiceState:
        """Migrate the DB, start the three components, wait until healthy.

        Already running (all three alive and healthy) -> the existing state. If anything
        fails or the caller is interrupted (Ctrl-C, SIGTERM), whatever was started is
        stopped again.
        """
        progress = on_progress or (lambda message: None)
        with self._locked(), signals_as_interrupts():
            existing = self.state()
            if existing is not None:
                if self.is_running() and is_healthy(health(existing.url)):
                    running_on = "postgres" if existing.database_process else "sqlite"
                    if not self.settings.db_url and running_on != self.settings.database:
                        raise ServiceError(
                            f"Airflow in {self.settings.home} is already running on "
                            f"{running_on}, not {self.settings.database}; stop it first "
                            f"(orchbench airflow down --home {self.settings.home})"
                        )
                    return existing
                # A half-dead install (a component crashed, or the caller was killed).
                self.supervisor.stop(timeout_s=self.settings.stop_timeout_s)
                self._wait_port_released()
            if not port_is_free(self.settings.port):
                raise ServiceError(
                    f"port {self.settings.port} on 127.0.0.1 is already in use by another "
                    "program; choose another with --port or ORCHBENCH_AIRFLOW_PORT"
                )
            self.supervisor.write(
                SupervisedState(
                    details={
                        "url": self.settings.url,
                        "port": self.settings.port,
                        "profile": self.settings.profile,
                        "home": str(self.settings.home),
                        "started_at": time.time(),
                    }
                )
            )
            self._write_local_settings()
            try:
                if self.settings.database == "postgres":
                    progress("starting PostgreSQL")
                    self._start_postgres()
                env = airflow_env(self.settings)
                self.supervisor.update(
                    orchbench_home=env.get("ORCHBENCH_HOME"),
                    database=redact(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]),
                )
                progress("airflow db migrate")
                self.supervisor.update(migrate_s=round(self.migrate(env), 3))
                records = []
                for component in COMPONENTS:
                    progress(f"starting {component}")
                    records.append(self._spawn(component, env))
                progress(f"waiting for {self.settings.url}/api/v2/monitor/health")
                self.supervisor.wait_healthy(
                    records,
                    lambda: is_healthy(health(self.settings.url)),
                    timeout_s=self.settings.health_timeout_s,
                    what=f"Airflow at {self.settings.url}",
                )
            except BaseException as err:
                self.supervisor.stop(timeout_s=self.settings.stop_timeout_s)
                self.supervisor.clear()
                if isinstance(err, SupervisorError | PostgresError):
                    raise ServiceError(str(err)) from None
                raise
            self.supervisor.update(healthy_at=time.time())
            state = self.state()
            assert state is not None  # just written
            return state

    def _start_postgres(self) -> None:
        """The metadata DB's server, in this install's state file, and its database."""
        postgres = EmbeddedPostgres(self.settings.home)
        postgres.start(self.supervisor, timeout_s=self.settings.health_timeout_s)
        postgres.ensure_database(AIRFLOW_DATABASE)

    def _write_local_settings(self) -> None:
        path = self.settings.home / "config" / "airflow_local_settings.py"
        if PRELOAD_VARIABLE in profile_settings("airflow", self.settings.profile):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(PRELOAD_SETTINGS)
        else:
            path.unlink(missing_ok=True)

    def _spawn(self, component: str, env: dict[str, str]) -> ComponentProcess:
        return self.supervisor.spawn(
            component,
            component_command(component, self.settings),
            env=env,
            log=self.settings.log_file(component),
            cwd=self.settings.home,
        )

    def restart_component(self, component: str) -> float:
        """Stop one component (SIGTERM to its process group, so the scheduler takes its
        LocalExecutor workers and task processes with it) and start it again on the same
        home, port and database, the others left running. Returns once the API reports
        every part healthy again, a restarted scheduler or dag-processor with a heartbeat
        newer than the restart; the seconds from the stop to then."""
        if component not in COMPONENTS:
            raise ServiceError(f"unknown component {component!r}; expected one of {COMPONENTS}")
        with self._locked(), signals_as_interrupts():
            if component not in self.running_components():
                raise ServiceError(f"Airflow's {component} is not running in {self.settings.home}")
            begun = time.time()
            self.supervisor.stop([component], timeout_s=self.settings.stop_timeout_s)
            if component == "api-server":
                self._wait_port_released()
            self._wait_back(component, self._spawn(component, airflow_env(self.settings)), begun)
            return time.time() - begun

    def _wait_port_released(self) -> None:
        """A straggler of a stopped API server may hold its port for a moment."""
        deadline = time.monotonic() + self.settings.health_timeout_s
        while accepts_connections(self.settings.port):
            if time.monotonic() > deadline:
                raise ServiceError(f"port {self.settings.port} still listened on after the stop")
            time.sleep(0.2)

    def revive_crashed(self) -> list[str]:
        """Start again a scheduler or dag-processor that exited on its own while the
        install is up, as the chart's Deployments or a systemd unit would; one note per
        restart, naming how it ended and its log's last lines. Airflow 3.3.2's scheduler,
        for one, exits when a backfill that a lock error cut short deletes runs it was
        scheduling (ObjectDeletedError), and every run then waits forever. Nothing while
        the install is stopped, or while a start, stop or restart holds its lock."""
        notes = []
        with self._locked(), signals_as_interrupts():
            state = self.supervisor.read()
            for component in RESTARTED_ON_EXIT:
                record = state.get(component) if state else None
                if record is None or record.alive():
                    continue
                begun = time.time()
                notes.append(
                    f"Airflow's {component} (pid {record.pid}) exited{exit_note(record.pid)}; "
                    f"started again. Last lines of {record.log}:\n{tail(record.log, 60)}"
                )
                self._wait_back(
                    component, self._spawn(component, airflow_env(self.settings)), begun
                )
        return notes

    def _wait_back(self, component: str, record: ComponentProcess, begun: float) -> None:
        """Wait until the API reports every part healthy, a (re)started scheduler or
        dag-processor with a heartbeat newer than ``begun``."""
        heartbeat = {"scheduler": "scheduler", "dag-processor": "dag_processor"}.get(component)

        def healthy_again() -> bool:
            report = health(self.settings.url)
            if not is_healthy(report) or heartbeat is None:
                return is_healthy(report)
            beat = (report or {})[heartbeat].get(f"latest_{heartbeat}_heartbeat")
            return bool(beat) and datetime.fromisoformat(beat).timestamp() > begun

        try:
            self.supervisor.wait_healthy(
                record,
                healthy_again,
                timeout_s=self.settings.health_timeout_s,
                what=f"Airflow at {self.settings.url} after restarting its {component}",
            )
        except SupervisorError as err:
            raise ServiceError(str(err)) from None

    def stop(self) -> dict[str, str]:
        """Stop every process recorded in AIRFLOW_HOME/run (works from any shell); how
        each ended: ``terminated``, ``killed`` or ``not running``."""
        with self._locked():
            try:
                results = self.supervisor.stop(timeout_s=self.settings.stop_timeout_s)
            except SupervisorError as err:
                raise ServiceError(str(err)) from None
        outcome = {name: "not running" for name in COMPONENTS}
        outcome.update({name: result.outcome for name, result in results.items()})
        return outcome
