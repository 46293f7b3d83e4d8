"""Local Airflow services: api-server, scheduler and dag-processor as separate processes.

Each component runs in its own process group (``start_new_session``), so that stopping it
also stops the LocalExecutor workers and task processes it forked. What is running is
written to ``$AIRFLOW_HOME/run/`` (one pid file per component plus ``services.json``),
so ``orchbench airflow down`` works from another shell. Stopping sends SIGTERM to each
group, waits, then SIGKILLs whatever is left, including descendants that changed group.

This module runs in the core environment: it starts the ``airflow`` program of the
airflow environment and never imports Airflow.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import psutil
from filelock import FileLock

from benchmarks.environments import REPO_ROOT, tool_bin, tool_env
from benchmarks.tools.airflow.alerting import smtp_connection
from benchmarks.tools.processes import live_process
from shared_ml.spec import PIPELINE

Profile = Literal["defaults", "tuned"]
PROFILES: tuple[Profile, ...] = ("defaults", "tuned")
COMPONENTS = ("api-server", "scheduler", "dag-processor")
DEFAULT_HOME = REPO_ROOT / "var" / "airflow"
DEFAULT_PORT = 8080
DAGS_FOLDER = REPO_ROOT / "pipelines" / "airflow"
# At least the number of model candidates of the bundled configs (3), so that one run's
# candidate branches run at once. Airflow's default, 32, starts 32 LocalExecutor worker
# processes (about 1.5 GB); each worker is a process, so keep it small on 2 cores.
DEFAULT_PARALLELISM = 4

# Airflow's defaults except what a 2-core laptop and a project-local install need.
BASE_SETTINGS = {
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    # Task slots (and LocalExecutor worker processes): see DEFAULT_PARALLELISM.
    "AIRFLOW__CORE__PARALLELISM": str(DEFAULT_PARALLELISM),
    "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(DEFAULT_PARALLELISM),
    "AIRFLOW__SCHEDULER__CATCHUP_BY_DEFAULT": "False",
    "AIRFLOW__API__WORKERS": "1",
    # Every task process re-parses its DAG file first (default limit 30 s). On a loaded
    # 2-core machine that parse alone was seen taking over 20 s; a timeout reschedules the
    # task a minute later, so allow more.
    "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
    "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
}

# The documented "tuned" profile: shorter loops and refresh intervals, fewer parsers.
# Each value trades a little idle CPU for latency; docs/airflow.md explains each one.
TUNED_SETTINGS = {
    # New or changed DAG files are seen within seconds rather than 5 minutes / 30 s.
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
    "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "2",
    # One parsing process is plenty for a handful of DAG files on 2 cores.
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
    # The scheduler loop sleeps less when idle, so a trigger or a finished task is acted on sooner.
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
    # Killed workers are found in seconds rather than 5 minutes.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
    # See PRELOAD_SETTINGS: the scheduler imports the pipeline's libraries once, and every
    # LocalExecutor task process (forked from it) starts with them already imported.
    "ORCHBENCH_AIRFLOW_PRELOAD": ",".join(
        [
            "pipelines.airflow.tasks",
            "pipelines.airflow.alerts",
            "pipelines.airflow.metadata",
            "shared_ml.execution",
            "shared_ml.workloads",
            *(f"shared_ml.steps.{step}" for step in PIPELINE.step_names),
        ]
    ),
}

# Written to $AIRFLOW_HOME/config/airflow_local_settings.py for the tuned profile; Airflow
# imports that module in every one of its processes at start-up.
PRELOAD_SETTINGS = """\
# Written by orchbench (profile "tuned"); removed again by a "defaults" start.
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


class ServiceError(RuntimeError):
    """The Airflow services could not be started, reached or stopped."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServiceSettings:
    """Everything that decides how the services are started."""

    home: Path = DEFAULT_HOME
    port: int = DEFAULT_PORT
    profile: Profile = "defaults"
    db_url: str | None = None  # default: SQLite in AIRFLOW_HOME
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
            raise ServiceError(f"profile {self.profile!r}: expected one of {', '.join(PROFILES)}")
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

    def pid_file(self, component: str) -> Path:
        return self.run_dir / f"{component}.pid"

    def log_file(self, component: str) -> Path:
        return self.home / "logs" / "services" / f"{component}.log"


def _persistent_secret(path: Path) -> str:
    """A random secret kept in AIRFLOW_HOME, so every component (and a restart) agrees."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def airflow_env(settings: ServiceSettings) -> dict[str, str]:
    """The environment every Airflow process of this install gets."""
    home = settings.home
    env = tool_env()
    env.update(BASE_SETTINGS)
    if settings.profile == "tuned":
        env.update(TUNED_SETTINGS)
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
            "AIRFLOW__API_AUTH__JWT_SECRET": _persistent_secret(secrets_dir / "jwt_secret"),
            "AIRFLOW__API__SECRET_KEY": _persistent_secret(secrets_dir / "api_secret_key"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": settings.db_url
            or f"sqlite:///{home / 'airflow.db'}",
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


# --- process bookkeeping -------------------------------------------------------------


@dataclass
class ComponentProcess:
    name: str
    pid: int
    create_time: float

    def process(self) -> psutil.Process | None:
        """The live process, or None if it exited or the pid was reused."""
        return live_process(self.pid, self.create_time)

    def alive(self) -> bool:
        return self.process() is not None


@dataclass
class ServiceState:
    url: str
    port: int
    profile: str
    home: str
    started_at: float
    components: dict[str, ComponentProcess] = field(default_factory=dict)
    healthy_at: float | None = None
    migrate_s: float | None = None
    orchbench_home: str | None = None  # where the workers write artifacts and run records

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def load(cls, path: Path) -> ServiceState | None:
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            data["components"] = {
                name: ComponentProcess(**proc) for name, proc in data["components"].items()
            }
            return cls(**data)
        except (json.JSONDecodeError, TypeError, KeyError) as err:
            raise ServiceError(f"{path}: unreadable service state ({err}); remove it") from None

    @property
    def cold_start_s(self) -> float | None:
        return None if self.healthy_at is None else self.healthy_at - self.started_at


def _write_state(settings: ServiceSettings, state: ServiceState) -> None:
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    tmp = settings.state_file.with_suffix(".tmp")
    tmp.write_text(state.to_json())
    tmp.replace(settings.state_file)
    for name, proc in state.components.items():
        settings.pid_file(name).write_text(f"{proc.pid}\n")


def _clear_state(settings: ServiceSettings) -> None:
    for path in [settings.state_file, *(settings.pid_file(c) for c in COMPONENTS)]:
        path.unlink(missing_ok=True)


def process_tree(pids: list[int]) -> list[psutil.Process]:
    """The processes and all their live descendants (deduplicated)."""
    found: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                found[proc.pid] = proc
        except psutil.NoSuchProcess:
            continue
    return list(found.values())


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess, PermissionError):
            continue
    return members


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_components(
    components: dict[str, ComponentProcess], timeout_s: float = 20.0
) -> dict[str, str]:
    """SIGTERM every component's process group, wait, SIGKILL what is left. Returns how
    each component ended (``terminated``, ``killed`` or ``not running``)."""
    outcome: dict[str, str] = {}
    targets: dict[str, list[psutil.Process]] = {}
    for name, comp in components.items():
        root = comp.process()
        if root is None:
            outcome[name] = "not running"
            continue
        # Remember the whole tree now: a worker that called setsid is no longer in the group.
        targets[name] = list(
            {p.pid: p for p in [*process_tree([root.pid]), *_group_members(root.pid)]}.values()
        )
        _signal_group(root.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for name, procs in targets.items():
        _, alive = psutil.wait_procs(procs, timeout=max(deadline - time.monotonic(), 0.1))
        survivors = [*alive, *_group_members(components[name].pid)]
        if survivors:
            _signal_group(components[name].pid, signal.SIGKILL)
            for proc in survivors:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()
            psutil.wait_procs(survivors, timeout=5)
            outcome[name] = "killed"
        else:
            outcome[name] = "terminated"
    return outcome


def stop_children_in(home: Path, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL, the process groups of this process's children that run in
    ``home`` (every component's working directory)."""
    children = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            if child.cwd() == os.path.realpath(home):
                children.append(child)
    for child in children:
        _signal_group(child.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(children, timeout=timeout_s)
    for child in alive:
        _signal_group(child.pid, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """Turn SIGINT/SIGTERM/SIGHUP into KeyboardInterrupt while starting, so cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    # Ctrl-C too, even when this process inherited SIGINT as ignored (a command started in
    # the background by a non-interactive shell does): cleanup must still run.
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_checked(command: list[str], env: dict[str, str], log: Path, timeout_s: float) -> None:
    """Run a one-off airflow command in its own group; kill the group on timeout/interrupt."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = proc.wait(timeout=timeout_s)
        except BaseException:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if code != 0:
        raise ServiceError(
            f"`{' '.join(command[1:])}` exited with {code}; last lines of {log}:\n{_tail(log)}"
        )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


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


class AirflowServices:
    """Start, inspect and stop one local Airflow install (one AIRFLOW_HOME)."""

    def __init__(self, settings: ServiceSettings | None = None) -> None:
        self.settings = settings or ServiceSettings.from_env()

    def _locked(self) -> FileLock:
        """One start/stop at a time per AIRFLOW_HOME, across shells."""
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.settings.run_dir / ".services.lock"), timeout=300)

    # --- queries ----------------------------------------------------------------------
    def state(self) -> ServiceState | None:
        return ServiceState.load(self.settings.state_file)

    def running_components(self) -> dict[str, ComponentProcess]:
        state = self.state()
        if state is None:
            return {}
        return {name: comp for name, comp in state.components.items() if comp.alive()}

    def is_running(self) -> bool:
        state = self.state()
        return bool(state) and len(self.running_components()) == len(COMPONENTS)

    def pids(self, include_children: bool = True) -> list[int]:
        roots = [comp.pid for comp in self.running_components().values()]
        if not include_children:
            return roots
        return sorted(p.pid for p in process_tree(roots))

    def status(self) -> dict[str, Any]:
        state = self.state()
        running = self.running_components()
        report = health(state.url) if state else None
        return {
            "home": str(self.settings.home),
            "url": state.url if state else None,
            "profile": state.profile if state else None,
            "components": {
                name: {
                    "pid": state.components[name].pid
                    if state and name in state.components
                    else None,
                    "running": name in running,
                }
                for name in COMPONENTS
            },
            "healthy": is_healthy(report),
            "health": report,
        }

    # --- lifecycle --------------------------------------------------------------------
    def migrate(self, env: dict[str, str] | None = None, timeout_s: float = 600.0) -> float:
        """``airflow db migrate``; returns the seconds it took."""
        started = time.monotonic()
        self.settings.home.mkdir(parents=True, exist_ok=True)
        _run_checked(
            [str(tool_bin("airflow", "airflow")), "db", "migrate"],
            env or airflow_env(self.settings),
            self.settings.log_file("db-migrate"),
            timeout_s,
        )
        return time.monotonic() - started

    def start(self, on_progress: Callable[[str], None] | None = None) -> ServiceState:
        """Migrate the DB, start the three components, wait until healthy.

        Already running (all three alive) -> the existing state. If anything fails or the
        caller is interrupted (Ctrl-C, SIGTERM), whatever was started is stopped again.
        """
        progress = on_progress or (lambda message: None)
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        with self._locked(), signals_as_interrupts():
            existing = self.state()
            if existing is not None:
                alive = {n: c for n, c in existing.components.items() if c.alive()}
                if len(alive) == len(COMPONENTS) and is_healthy(health(existing.url)):
                    return existing
                # A half-dead install (a component crashed, or the caller was killed).
                stop_components(alive, self.settings.stop_timeout_s)
                _clear_state(self.settings)
            if _port_in_use(self.settings.port):
                raise ServiceError(
                    f"port {self.settings.port} on 127.0.0.1 is already in use by another "
                    "program; choose another with --port or ORCHBENCH_AIRFLOW_PORT"
                )
            env = airflow_env(self.settings)
            state = ServiceState(
                url=self.settings.url,
                port=self.settings.port,
                profile=self.settings.profile,
                home=str(self.settings.home),
                started_at=time.time(),
                orchbench_home=env.get("ORCHBENCH_HOME"),
            )
            self._write_local_settings()
            try:
                progress("airflow db migrate")
                state.migrate_s = round(self.migrate(env), 3)
                for component in COMPONENTS:
                    progress(f"starting {component}")
                    state.components[component] = self._spawn(component, env)
                    _write_state(self.settings, state)
                progress(f"waiting for {self.settings.url}/api/v2/monitor/health")
                self._wait_healthy(state)
            except BaseException:
                stop_components(state.components, self.settings.stop_timeout_s)
                # An interrupt can land inside _spawn, after the fork and before the
                # component is in the state: stop such children of ours too.
                stop_children_in(self.settings.home, self.settings.stop_timeout_s)
                _clear_state(self.settings)
                raise
            state.healthy_at = time.time()
            _write_state(self.settings, state)
            return state

    def _write_local_settings(self) -> None:
        path = self.settings.home / "config" / "airflow_local_settings.py"
        if self.settings.profile == "tuned":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(PRELOAD_SETTINGS)
        else:
            path.unlink(missing_ok=True)

    def _spawn(self, component: str, env: dict[str, str]) -> ComponentProcess:
        log = self.settings.log_file(component)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                component_command(component, self.settings),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.settings.home,
                start_new_session=True,  # own process group: stopped as a whole
            )
        try:
            created = psutil.Process(proc.pid).create_time()
        except psutil.NoSuchProcess:
            created = time.time()
        return ComponentProcess(name=component, pid=proc.pid, create_time=created)

    def _wait_healthy(self, state: ServiceState) -> None:
        deadline = time.monotonic() + self.settings.health_timeout_s
        report: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            for name, comp in state.components.items():
                if not comp.alive():
                    raise ServiceError(
                        f"airflow {name} exited during start-up; last lines of "
                        f"{self.settings.log_file(name)}:\n{_tail(self.settings.log_file(name))}"
                    )
            report = health(state.url)
            if is_healthy(report):
                return
            time.sleep(0.25)
        raise ServiceError(
            f"Airflow at {state.url} not healthy after {self.settings.health_timeout_s:.0f} s "
            f"(last health report: {report}); logs in {self.settings.log_file('x').parent}"
        )

    def stop(self) -> dict[str, str]:
        """Stop every component recorded in AIRFLOW_HOME/run (works from any shell)."""
        with self._locked():
            state = self.state()
            if state is None:
                return {name: "not running" for name in COMPONENTS}
            outcome = stop_components(state.components, self.settings.stop_timeout_s)
            _clear_state(self.settings)
            return outcome


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


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


def pss_bytes(pids: list[int]) -> int:
    """Sum of proportional set size (shared pages split between sharers) over ``pids``."""
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += psutil.Process(pid).memory_full_info().pss
    return total
