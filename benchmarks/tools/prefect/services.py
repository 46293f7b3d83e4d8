"""Start, watch and stop a local Prefect server and process worker. No Prefect import:
this runs in the core environment and starts ``.venvs/prefect/bin/prefect``.

Layout under the Prefect home (``$ORCHBENCH_PREFECT_HOME``, default ``<repo>/var/prefect``):
``prefect.db`` (SQLite, unless a database URL is given), ``logs/{server,worker,deploy}.log``
and ``orchbench-services.json`` (url, profile, and pid + process group + start time of each
process). The processes run under the project's one supervisor
(``benchmarks.services.supervisor``): each leads its own process group, so stopping sends
SIGTERM to the whole group, waits, then SIGKILLs whatever is left, including any
descendant that moved to a group of its own (a flow-run subprocess of the worker).

Profiles (``defaults``: Prefect's own polling; ``tuned``: the worker and runner poll every
second) are data: ``benchmarks/tools/prefect/profiles.yaml``, each setting with its reason
and documentation, read through ``benchmarks.tools.profiles``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.environments import REPO_ROOT, tool_bin, tool_env
from benchmarks.services.postgres import (
    Database,
    EmbeddedPostgres,
    PostgresError,
    check_database,
    redact,
)
from benchmarks.services.processes import accepts_connections
from benchmarks.services.supervisor import (
    Supervisor,
    SupervisorError,
    free_port,
    port_is_free,
    signals_as_interrupts,
)
from benchmarks.tools.prefect.install import (
    AUTH_ENV,
    ProcessEntry,
    ServiceError,
    ServicesState,
    register_deployment,
    ui_login,
)
from benchmarks.tools.profiles import profiles_of
from benchmarks.tools.profiles import settings as profile_settings
from shared_ml.logs import LOGGER_NAME as SHARED_ML_LOGGER

Profile = str  # a profile named in benchmarks/tools/prefect/profiles.yaml
# Each profile's settings (base, task concurrency, knobs) are data, with their reasons and
# documentation: benchmarks/tools/prefect/profiles.yaml (benchmarks.tools.profiles).
PROFILES: dict[str, dict[str, str]] = {
    name: profile_settings("prefect", name) for name in profiles_of("prefect")
}
HOME_ENV = "ORCHBENCH_PREFECT_HOME"
STATE_FILE = "orchbench-services.json"
DEFAULT_PORT = 4200
DEFAULT_POOL = "orchbench-process"
HEALTH_TIMEOUT_S = 120.0
EXTRA_LOGGERS_ENV = "PREFECT_LOGGING_EXTRA_LOGGERS"
STOP_GRACE_S = 15.0
PREFECT_DATABASE = "prefect"  # database and role in the services' own PostgreSQL


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or REPO_ROOT / "var" / "prefect").resolve()


# Re-exported: callers (adapter, CLI, tests) import them from here.
__all__ = [
    "AUTH_ENV",
    "ProcessEntry",
    "ServiceError",
    "ServicesState",
    "free_port",
    "port_is_free",
    "ui_login",
]


def with_shared_ml_logger(extra_loggers: str | None) -> str:
    """``PREFECT_LOGGING_EXTRA_LOGGERS`` with ``shared_ml`` added: Prefect ships only the
    records of its own loggers and of the loggers named there to the API (its logging
    setup gives each of them the API handler), so without it the steps' lines would reach
    the console only, never the task-run logs."""
    names = [n.strip() for n in (extra_loggers or "").split(",") if n.strip()]
    return ",".join(names if SHARED_ML_LOGGER in names else [*names, SHARED_ML_LOGGER])


def prefect_env(
    home: Path, api_url: str, profile: str = "defaults", database_url: str | None = None
) -> dict[str, str]:
    """Environment for every Prefect process: server, worker (and so the flow-run
    processes it starts), deploy and flow clients."""
    if profile not in PROFILES:
        raise ServiceError(f"profile {profile!r}: expected one of {', '.join(PROFILES)}")
    extra = {
        "PREFECT_HOME": str(home),
        # Always set: without it every client process starts its own throw-away server.
        "PREFECT_API_URL": api_url,
        "PREFECT_UI_API_URL": api_url,
        EXTRA_LOGGERS_ENV: with_shared_ml_logger(os.environ.get(EXTRA_LOGGERS_ENV)),
        **PROFILES[profile],
    }
    if database_url:
        extra["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = database_url
    env = tool_env(extra)
    if not database_url:
        env.pop("PREFECT_SERVER_DATABASE_CONNECTION_URL", None)
        env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
    return env


class PrefectServices:
    """The local Prefect services of one Prefect home."""

    def __init__(self, home: Path | str | None = None) -> None:
        self.home = Path(home).resolve() if home else default_home()
        self.state_path = self.home / STATE_FILE
        self.supervisor = Supervisor(self.state_path)

    # --- state --------------------------------------------------------------------
    def read_state(self) -> ServicesState | None:
        try:
            supervised = self.supervisor.read()
            return None if supervised is None else ServicesState.from_supervised(supervised)
        except (SupervisorError, TypeError) as err:
            raise ServiceError(f"{self.state_path}: unreadable state file ({err})") from None

    def _save(self, state: ServicesState) -> None:
        """The details only: the supervisor records each process as it spawns it."""
        self.supervisor.update(**state.details())
        saved = self.read_state()
        state.processes = saved.processes if saved else []

    def healthy(self, state: ServicesState | None = None, timeout_s: float = 3.0) -> bool:
        state = state or self.read_state()
        if state is None:
            return False
        try:
            response = httpx.get(f"{state.api_url}/health", timeout=timeout_s)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def status(self) -> dict[str, Any]:
        state = self.read_state()
        if state is None:
            return {"running": False, "home": str(self.home)}
        processes = {e.name: {"pid": e.pid, "alive": e.alive()} for e in state.processes}
        return {
            "running": any(p["alive"] for p in processes.values()),
            "healthy": self.healthy(state),
            "url": state.url,
            "home": state.home,
            "profile": state.profile,
            "pool": state.pool,
            "database": state.database,
            "database_kind": state.database_kind,
            "processes": processes,
            "pids": self.pids(state),
            "cold_start_s": state.cold_start_s,
        }

    def pids(self, state: ServicesState | None = None) -> list[int]:
        """Every live process of the services: the leaders and all their descendants."""
        return self.supervisor.pids(include_descendants=True)

    # --- start --------------------------------------------------------------------
    def up(
        self,
        *,
        port: int | None = None,
        profile: str = "defaults",
        database: Database = "sqlite",
        database_url: str | None = None,
        pool: str = DEFAULT_POOL,
        worker: bool = True,
        deploy_config: str | None = "configs/default.yaml",
        timeout_s: float = HEALTH_TIMEOUT_S,
    ) -> ServicesState:
        """Start the server (and the worker), wait until healthy; return the state.

        ``database="postgres"``: a PostgreSQL in ``<home>/postgres`` is started first
        (recorded with the others, stopped after them); the server migrates it on start.
        Refuses when services of this home are already running. If anything fails or the
        caller is interrupted (Ctrl-C, SIGTERM), whatever was started is stopped again.
        """
        try:
            check_database(database, "database")
        except PostgresError as err:
            raise ServiceError(str(err)) from None
        if database == "postgres" and database_url:
            raise ServiceError(
                "give either --database-url (a database run elsewhere) or --db postgres "
                "(a PostgreSQL started with the services), not both"
            )
        existing = self.read_state()
        if existing is not None and self.supervisor.running():
            raise ServiceError(
                f"Prefect services of {self.home} are already running at {existing.url} "
                f"(pids {self.pids(existing)}); run `orchbench prefect down` first"
            )
        if existing is not None:
            self.down()  # a stale state file: its processes are gone
        if deploy_config:
            # Relative to the working directory, else to the repository (the default
            # config must be found when orchbench runs from elsewhere).
            found = next(
                (p for p in (Path(deploy_config), REPO_ROOT / deploy_config) if p.is_file()), None
            )
            if found is None:
                raise ServiceError(f"deployment config {deploy_config}: file not found")
            deploy_config = str(found.resolve())
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        if port is None:  # the usual port when free, else any free one
            port = DEFAULT_PORT if port_is_free(DEFAULT_PORT) else free_port()
        elif not port_is_free(port):
            raise ServiceError(f"port {port} on 127.0.0.1 is in use; choose another with --port")
        url = f"http://127.0.0.1:{port}"
        state = ServicesState(
            url=url,
            port=port,
            home=str(self.home),
            profile=profile,
            pool=pool,
            database=redact(database_url) if database_url else f"sqlite:{self.home}/prefect.db",
            database_url=database_url,
            database_kind=database,
        )
        prefect = str(tool_bin("prefect", "prefect"))
        with signals_as_interrupts():
            try:
                self._save(state)
                if database == "postgres":
                    state.database_url = self._start_postgres(timeout_s)
                    state.database = redact(state.database_url)
                    self._save(state)
                env = prefect_env(self.home, state.api_url, profile, state.database_url)
                server = [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
                state.cold_start_s = round(self._start_server(state, server, env, timeout_s), 3)
                self._save(state)
                if deploy_config:
                    state.deployment_id = register_deployment(
                        self.home, deploy_config, pool, env, timeout_s
                    )
                    self._save(state)
                if worker:
                    state.worker_ready_s = round(self._start_worker(state, env, timeout_s), 3)
                    self._save(state)
            except BaseException as err:
                self.down()
                if isinstance(err, SupervisorError | PostgresError):
                    raise ServiceError(str(err)) from None
                raise
        return state

    def _start_postgres(self, timeout_s: float) -> str:
        """The PostgreSQL of this home, with a ``prefect`` database; its asyncpg URL."""
        postgres = EmbeddedPostgres(self.home)
        postgres.start(self.supervisor, timeout_s=timeout_s)
        postgres.ensure_database(PREFECT_DATABASE)
        return postgres.url(PREFECT_DATABASE, driver="asyncpg")

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> ProcessEntry:
        return self.supervisor.spawn(
            name,
            command,
            env=env,
            log=self.home / "logs" / f"{name}.log",
            cwd=env.get("ORCHBENCH_HOME", str(REPO_ROOT)),
        )

    def _start_server(
        self, state: ServicesState, command: list[str], env: dict[str, str], timeout_s: float
    ) -> float:
        """Spawn the server; the seconds from spawn to a healthy API."""
        started = time.monotonic()
        server = self._spawn("server", command, env)
        self.supervisor.wait_healthy(
            server,
            lambda: self.healthy(state, timeout_s=2.0),
            timeout_s=timeout_s,
            what=f"prefect server at {state.url}",
            interval_s=0.2,
        )
        return time.monotonic() - started

    def _start_worker(self, state: ServicesState, env: dict[str, str], timeout_s: float) -> float:
        """Spawn the process worker; the seconds until the server lists it ONLINE."""
        started = time.monotonic()
        command = [str(tool_bin("prefect", "prefect")), "worker", "start", "--pool", state.pool]
        command += ["--type", "process", "--name", f"orchbench-{state.port}"]
        command += ["--install-policy", "never"]
        prefetch = PROFILES[state.profile].get("PREFECT_WORKER_PREFETCH_SECONDS")
        if prefetch is not None:
            command += ["--prefetch-seconds", prefetch]
        worker = self._spawn("worker", command, env)

        def online() -> bool:
            try:
                response = httpx.post(
                    f"{state.api_url}/work_pools/{state.pool}/workers/filter", json={}, timeout=5
                )
            except httpx.HTTPError:
                return False
            return response.status_code == 200 and any(
                w.get("status") == "ONLINE" for w in response.json()
            )

        self.supervisor.wait_healthy(
            worker, online, timeout_s=timeout_s, what="prefect worker", interval_s=0.3
        )
        return time.monotonic() - started

    def restart_server(self, timeout_s: float = HEALTH_TIMEOUT_S) -> float:
        """Stop the server and start it again on the same port and database; the worker
        keeps running and reconnects. Returns the seconds until healthy again."""
        state = self.read_state()
        server = next((e for e in state.processes if e.name == "server"), None) if state else None
        if state is None or server is None:
            raise ServiceError(f"no Prefect server recorded in {self.home}")
        self.supervisor.stop(["server"], timeout_s=STOP_GRACE_S)
        env = prefect_env(self.home, state.api_url, state.profile, state.database_url)
        started = time.monotonic()
        deadline = started + timeout_s
        while accepts_connections(state.port) and time.monotonic() < deadline:
            time.sleep(0.2)  # a straggler of the old server may hold it for a moment
        try:
            self._start_server(state, server.command, env, timeout_s)
        except SupervisorError as err:
            raise ServiceError(str(err)) from None
        return round(time.monotonic() - started, 3)

    def restart_worker(self, *, stop: bool = True, timeout_s: float = HEALTH_TIMEOUT_S) -> float:
        """Start the worker again; the seconds until the server lists it online.

        ``stop=True``: first stop the running worker (SIGTERM to its process group, then
        SIGKILL to what is left, flow-run processes it started included), as restarting
        its pod would. ``stop=False``: the worker process is already dead (killed); a new
        one is started beside whatever it left running, as a process supervisor would."""
        state = self.read_state()
        worker = next((e for e in state.processes if e.name == "worker"), None) if state else None
        if state is None or worker is None:
            raise ServiceError(f"no Prefect worker recorded in {self.home}")
        started = time.monotonic()
        if stop:
            self.supervisor.stop(["worker"], timeout_s=STOP_GRACE_S)
        env = prefect_env(self.home, state.api_url, state.profile, state.database_url)
        try:
            self._start_worker(state, env, timeout_s)
        except SupervisorError as err:
            raise ServiceError(str(err)) from None
        return round(time.monotonic() - started, 3)

    # --- stop ---------------------------------------------------------------------
    def down(self, grace_s: float = STOP_GRACE_S) -> list[int]:
        """Stop every process; return the pids that had to be SIGKILLed."""
        try:
            results = self.supervisor.stop(timeout_s=grace_s)
        except SupervisorError as err:
            raise ServiceError(str(err)) from None
        self.supervisor.clear()
        return sorted(pid for result in results.values() for pid in result.killed_pids)
