"""Start, watch and stop a local Prefect server and process worker. No Prefect import:
this runs in the core environment and starts ``.venvs/prefect/bin/prefect``.

Layout under the Prefect home (``$ORCHBENCH_PREFECT_HOME``, default ``<repo>/var/prefect``):
``prefect.db`` (SQLite, unless a database URL is given), ``logs/{server,worker,deploy}.log``
and ``orchbench-services.json`` (url, profile, and pid + process group + start time of each
process). Each process leads its own process group, so stopping sends SIGTERM to the whole
group, waits, then SIGKILLs whatever is left, including any descendant that moved to a
group of its own (a flow-run subprocess of the worker): no orphans.

Profiles (``ORCHBENCH``'s poll-interval knob):

- ``defaults``: Prefect's own settings (worker query every 10 s, prefetch 10 s; runner
  poll 10 s for ``serve``);
- ``tuned``: worker query every 1 s, prefetch 1 s, runner poll 1 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import psutil

from benchmarks.environments import REPO_ROOT, tool_bin, tool_env
from benchmarks.tools.processes import live_process
from shared_ml.logs import LOGGER_NAME as SHARED_ML_LOGGER

Profile = Literal["defaults", "tuned"]
PROFILES: dict[str, dict[str, str]] = {
    "defaults": {},
    "tuned": {
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    },
}
HOME_ENV = "ORCHBENCH_PREFECT_HOME"
STATE_FILE = "orchbench-services.json"
DEFAULT_PORT = 4200
DEFAULT_POOL = "orchbench-process"
HEALTH_TIMEOUT_S = 120.0
EXTRA_LOGGERS_ENV = "PREFECT_LOGGING_EXTRA_LOGGERS"
STOP_GRACE_S = 15.0


class ServiceError(RuntimeError):
    """A service could not be started, reached or stopped; the message says which."""


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or REPO_ROOT / "var" / "prefect").resolve()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class ProcessEntry:
    name: str
    pid: int
    create_time: float
    command: list[str]
    log: str

    def process(self) -> psutil.Process | None:
        """The live process, or None if it exited (or its pid was reused)."""
        return live_process(self.pid, self.create_time)


@dataclass
class ServicesState:
    url: str
    port: int
    home: str
    profile: str
    pool: str
    database: str
    processes: list[ProcessEntry] = field(default_factory=list)
    cold_start_s: float | None = None
    worker_ready_s: float | None = None
    deployment_id: str | None = None
    database_url: str | None = None  # raw (may hold a password): the state file is 0600

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ServicesState:
        data = json.loads(text)
        data["processes"] = [ProcessEntry(**p) for p in data.get("processes", [])]
        return cls(**data)


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
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        # The server serves the UI (its default; set so a stray setting cannot hide it).
        "PREFECT_SERVER_UI_ENABLED": "true",
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


AUTH_ENV = "PREFECT_SERVER_API_AUTH_STRING"


def ui_login(environ: dict[str, str] | None = None) -> str:
    """How to log in to the UI of a server started with this environment."""
    env = os.environ if environ is None else environ
    if env.get(AUTH_ENV):
        return f"basic auth: the user:password in ${AUTH_ENV}"
    return "no login: the local server has no authentication"


class PrefectServices:
    """The local Prefect services of one Prefect home."""

    def __init__(self, home: Path | str | None = None) -> None:
        self.home = Path(home).resolve() if home else default_home()
        self.state_path = self.home / STATE_FILE

    # --- state --------------------------------------------------------------------
    def read_state(self) -> ServicesState | None:
        if not self.state_path.exists():
            return None
        try:
            return ServicesState.from_json(self.state_path.read_text(encoding="utf-8"))
        except (ValueError, TypeError) as err:
            raise ServiceError(f"{self.state_path}: unreadable state file ({err})") from None

    def _write_state(self, state: ServicesState) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        tmp.write_text(state.to_json(), encoding="utf-8")
        tmp.replace(self.state_path)

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
        processes = {}
        for entry in state.processes:
            proc = entry.process()
            processes[entry.name] = {"pid": entry.pid, "alive": proc is not None}
        return {
            "running": any(p["alive"] for p in processes.values()),
            "healthy": self.healthy(state),
            "url": state.url,
            "home": state.home,
            "profile": state.profile,
            "pool": state.pool,
            "database": state.database,
            "processes": processes,
            "pids": self.pids(state),
            "cold_start_s": state.cold_start_s,
        }

    def pids(self, state: ServicesState | None = None) -> list[int]:
        """Every live process of the services: the leaders and all their descendants."""
        state = state or self.read_state()
        if state is None:
            return []
        found: set[int] = set()
        for entry in state.processes:
            proc = entry.process()
            if proc is None:
                continue
            found.add(proc.pid)
            found.update(_descendant_pids(proc))
        return sorted(found)

    # --- start --------------------------------------------------------------------
    def up(
        self,
        *,
        port: int | None = None,
        profile: str = "defaults",
        database_url: str | None = None,
        pool: str = DEFAULT_POOL,
        worker: bool = True,
        deploy_config: str | None = "configs/default.yaml",
        timeout_s: float = HEALTH_TIMEOUT_S,
    ) -> ServicesState:
        """Start the server (and the worker), wait until healthy; return the state.

        Refuses when services of this home are already running.
        """
        existing = self.read_state()
        if existing is not None and any(e.process() for e in existing.processes):
            raise ServiceError(
                f"Prefect services of {self.home} are already running at {existing.url} "
                f"(pids {self.pids(existing)}); run `orchbench prefect down` first"
            )
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
        env = prefect_env(self.home, f"{url}/api", profile, database_url)
        state = ServicesState(
            url=url,
            port=port,
            home=str(self.home),
            profile=profile,
            pool=pool,
            database=_redact(database_url) if database_url else f"sqlite:{self.home}/prefect.db",
            database_url=database_url,
        )
        prefect = str(tool_bin("prefect", "prefect"))
        try:
            started = time.monotonic()
            state.processes.append(
                self._spawn(
                    "server",
                    [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                    env,
                )
            )
            self._write_state(state)
            self._wait_healthy(state, timeout_s)
            state.cold_start_s = round(time.monotonic() - started, 3)
            self._write_state(state)
            if deploy_config:
                state.deployment_id = self._deploy(deploy_config, pool, env, timeout_s)
                self._write_state(state)
            if worker:
                worker_started = time.monotonic()
                command = [prefect, "worker", "start", "--pool", pool, "--type", "process"]
                command += ["--name", f"orchbench-{port}", "--install-policy", "never"]
                if profile == "tuned":
                    command += [
                        "--prefetch-seconds",
                        PROFILES["tuned"]["PREFECT_WORKER_PREFETCH_SECONDS"],
                    ]
                state.processes.append(self._spawn("worker", command, env))
                self._write_state(state)
                self._wait_worker(state, timeout_s)
                state.worker_ready_s = round(time.monotonic() - worker_started, 3)
                self._write_state(state)
        except BaseException:
            self.down()
            raise
        return state

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> ProcessEntry:
        log = self.home / "logs" / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                command,
                env=env,
                cwd=env.get("ORCHBENCH_HOME", str(REPO_ROOT)),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as one
            )
        return ProcessEntry(
            name=name,
            pid=proc.pid,
            create_time=psutil.Process(proc.pid).create_time(),
            command=command,
            log=str(log),
        )

    def _wait_healthy(self, state: ServicesState, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        server = next(e for e in state.processes if e.name == "server")
        while time.monotonic() < deadline:
            if server.process() is None:
                raise ServiceError(
                    f"prefect server exited during start-up; see {server.log}:\n"
                    + _tail(server.log)
                )
            if self.healthy(state, timeout_s=2.0):
                return
            time.sleep(0.2)
        raise ServiceError(
            f"prefect server at {state.url} not healthy after {timeout_s:.0f} s; see {server.log}"
        )

    def _deploy(self, config: str, pool: str, env: dict[str, str], timeout_s: float) -> str:
        log = self.home / "logs" / "deploy.log"
        command = [str(tool_bin("prefect", "python")), "-m", "pipelines.prefect.deploy"]
        command += ["--config", config, "--pool", pool]
        try:
            done = subprocess.run(
                command,
                env=env,
                cwd=env.get("ORCHBENCH_HOME", str(REPO_ROOT)),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ServiceError(f"registering the deployment took over {timeout_s:.0f} s") from None
        log.write_text(done.stdout + done.stderr, encoding="utf-8")
        if done.returncode != 0:
            raise ServiceError(f"registering the deployment failed; see {log}:\n{_tail(str(log))}")
        return json.loads(done.stdout.strip().splitlines()[-1])["deployment_id"]

    def _wait_worker(self, state: ServicesState, timeout_s: float) -> None:
        worker = state.processes[-1]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if worker.process() is None:
                raise ServiceError(
                    f"prefect worker exited during start-up; see {worker.log}:\n"
                    + _tail(worker.log)
                )
            try:
                response = httpx.post(
                    f"{state.api_url}/work_pools/{state.pool}/workers/filter", json={}, timeout=5
                )
                if response.status_code == 200 and any(
                    w.get("status") == "ONLINE" for w in response.json()
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise ServiceError(f"prefect worker not online after {timeout_s:.0f} s; see {worker.log}")

    def restart_server(self, timeout_s: float = HEALTH_TIMEOUT_S) -> float:
        """Stop the server and start it again on the same port and database; the worker
        keeps running and reconnects. Returns the seconds until healthy again."""
        state = self.read_state()
        if state is None:
            raise ServiceError(f"no Prefect services recorded in {self.home}")
        server = next(e for e in state.processes if e.name == "server")
        stop_process_tree(server, STOP_GRACE_S)
        env = prefect_env(self.home, state.api_url, state.profile, state.database_url)
        started = time.monotonic()
        deadline = started + timeout_s
        while not port_is_free(state.port) and time.monotonic() < deadline:
            time.sleep(0.2)  # the old socket may linger for a moment
        fresh = self._spawn("server", server.command, env)
        state.processes = [fresh if e.name == "server" else e for e in state.processes]
        self._write_state(state)
        self._wait_healthy(state, timeout_s)
        return round(time.monotonic() - started, 3)

    # --- stop ---------------------------------------------------------------------
    def down(self, grace_s: float = STOP_GRACE_S) -> list[int]:
        """Stop every process (worker first); return the pids that had to be SIGKILLed."""
        state = self.read_state()
        if state is None:
            return []
        killed: list[int] = []
        for entry in reversed(state.processes):
            killed += stop_process_tree(entry, grace_s)
        self.state_path.unlink(missing_ok=True)
        return killed


def stop_process_tree(entry: ProcessEntry, grace_s: float) -> list[int]:
    """SIGTERM the entry's process group and every descendant, wait, then SIGKILL."""
    leader = entry.process()
    if leader is None:
        return []
    tree = [leader, *_descendants(leader)]
    _signal_group(entry.pid, signal.SIGTERM)
    for proc in tree:
        _signal(proc, signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=grace_s)
    # Anything started while we waited (or re-parented to init) is caught here too.
    alive = list({p.pid: p for p in [*alive, *_group_members(entry.pid)]}.values())
    for proc in alive:
        _signal(proc, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)
    _reap(leader)
    return [p.pid for p in alive]


def _descendants(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _descendant_pids(proc: psutil.Process) -> Iterable[int]:
    return (p.pid for p in _descendants(proc))


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return members


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal(proc: psutil.Process, sig: int) -> None:
    with contextlib.suppress(psutil.Error):
        proc.send_signal(sig)


def _reap(proc: psutil.Process) -> None:
    # When we are the parent (same Python process started it), collect the zombie.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(proc.pid, os.WNOHANG)


def _tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _redact(url: str) -> str:
    """A database URL without its password, for state files and output."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
