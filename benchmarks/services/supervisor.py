"""One supervisor for the local services of every tool: Airflow, Prefect and PostgreSQL.

Each supervised process leads its own process group (``start_new_session``) and writes its
output to a log file. What runs is recorded in a JSON state file (name, pid, process group,
start time, command and log of each process, plus the owner's details), so that another
shell can inspect and stop it. Stopping sends each process's stop signal to its group,
waits, then SIGKILLs whatever is left, including descendants that moved to a group of
their own. A zombie counts as gone: it holds nothing but its pid; ours are reaped.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

# Set in every supervised process's environment: the state file that owns it.
SUPERVISOR_ENV = "ORCHBENCH_SUPERVISOR_STATE"
KILL_WAIT_S = 5.0
# How long a stop waits for the zombies it left to be collected by their parent (init, for
# a group whose leader died): they are no longer waited for as processes, but a caller that
# lists the group right after the stop should find it empty.
REAP_WAIT_S = 3.0

# The Popen objects of the processes this Python process started, by pid: polling them
# reaps our exited children without confusing the subprocess module.
_SPAWNED: dict[int, subprocess.Popen[bytes]] = {}


class SupervisorError(RuntimeError):
    """A process could not be started, become healthy or be stopped; the message says which."""


def live_process(pid: int, create_time: float) -> psutil.Process | None:
    """The process ``pid`` if it still runs and is the one started at ``create_time``
    (a pid reused by an unrelated process after ours exited does not count); a zombie
    counts as gone."""
    _reap(pid)
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > 1.0:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.NoSuchProcess:
        return None


@dataclass
class ProcessRecord:
    """One supervised process as the state file records it."""

    name: str
    pid: int
    create_time: float
    pgid: int = 0  # its own process group: the pid (start_new_session)
    command: list[str] = field(default_factory=list)
    log: str = ""
    stop_signal: str = "SIGTERM"
    # False: the stop signal goes to the leader only, which stops its own children
    # (PostgreSQL's postmaster: a signal to every backend would mean something else).
    signal_group: bool = True
    # Stopped after every other process of the state file: a database outlives its clients.
    stop_last: bool = False

    def __post_init__(self) -> None:
        self.pgid = self.pgid or self.pid

    def process(self) -> psutil.Process | None:
        """The live process, or None if it exited or its pid was reused."""
        return live_process(self.pid, self.create_time)

    def alive(self) -> bool:
        return self.process() is not None


@dataclass
class SupervisedState:
    """The state file's content: the processes, in start order, and the owner's details."""

    processes: list[ProcessRecord] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> ProcessRecord | None:
        return next((p for p in self.processes if p.name == name), None)


@dataclass
class StopResult:
    outcome: str  # "terminated", "killed" or "not running"
    killed_pids: list[int] = field(default_factory=list)


class Supervisor:
    """The processes recorded in one state file: spawn, wait for health, inspect, stop."""

    def __init__(self, state_file: Path | str) -> None:
        self.state_file = Path(state_file)

    # --- the state file ---------------------------------------------------------------
    def read(self) -> SupervisedState | None:
        try:
            text = self.state_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
            processes = [ProcessRecord(**entry) for entry in data["processes"]]
            return SupervisedState(processes, dict(data.get("details") or {}))
        except (ValueError, TypeError, KeyError) as err:
            raise SupervisorError(
                f"{self.state_file}: unreadable state file ({err!r}); stop the processes it "
                "names by hand, then remove it"
            ) from None

    def write(self, state: SupervisedState) -> None:
        """Atomically, readable by the owner only (details may hold a database URL)."""
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(state), fh, indent=2)
        tmp.replace(self.state_file)

    def update(self, **details: Any) -> SupervisedState:
        state = self.read() or SupervisedState()
        state.details.update(details)
        self.write(state)
        return state

    def clear(self) -> None:
        self.state_file.unlink(missing_ok=True)

    # --- queries ----------------------------------------------------------------------
    def running(self) -> dict[str, ProcessRecord]:
        state = self.read()
        return {p.name: p for p in (state.processes if state else []) if p.alive()}

    def pids(self, include_descendants: bool = True) -> list[int]:
        """The live recorded processes (and, by default, all their descendants)."""
        found: set[int] = set()
        for record in self.running().values():
            found.add(record.pid)
            if include_descendants:
                found.update(p.pid for p in _descendants(record.pid))
        return sorted(found)

    # --- start ------------------------------------------------------------------------
    def spawn(
        self,
        name: str,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        log: Path | str,
        cwd: Path | str | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        signal_group: bool = True,
        stop_last: bool = False,
    ) -> ProcessRecord:
        """Start ``command`` in its own process group, output appended to ``log``, and
        record it in the state file (replacing an earlier record of the same name)."""
        if cwd is not None and not Path(cwd).is_dir():
            raise SupervisorError(f"{name}: working directory {cwd} does not exist")
        log = Path(log)
        log.parent.mkdir(parents=True, exist_ok=True)
        before = _child_pids()
        try:
            with log.open("ab") as out:
                proc = subprocess.Popen(
                    list(command),
                    env={**env, SUPERVISOR_ENV: str(self.state_file)},
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    **_as_user(user),
                )
        except OSError as err:
            raise SupervisorError(f"{name}: cannot start {command[0]}: {err}") from None
        except BaseException:
            # Interrupted inside Popen, after the fork: no record will name that child.
            _kill_new_children(before)
            raise
        _SPAWNED[proc.pid] = proc
        try:
            record = ProcessRecord(
                name=name,
                pid=proc.pid,
                create_time=_create_time(proc.pid),
                command=list(command),
                log=str(log),
                stop_signal=signal.Signals(stop_signal).name,
                signal_group=signal_group,
                stop_last=stop_last,
            )
            state = self.read() or SupervisedState()
            names = [p.name for p in state.processes]
            if name in names:  # a restart keeps its place in the start order
                state.processes[names.index(name)] = record
            else:
                state.processes.append(record)
            self.write(state)
        except BaseException:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        return record

    def wait_healthy(
        self,
        watched: ProcessRecord | Sequence[ProcessRecord],
        check: Callable[[], bool] | str,
        *,
        timeout_s: float,
        what: str | None = None,
        interval_s: float = 0.25,
    ) -> float:
        """Poll ``check`` (a callable, or a URL that must answer 200) until it passes;
        fail at once, with the log's last lines, when a watched process exits. Returns
        the seconds waited."""
        records = [watched] if isinstance(watched, ProcessRecord) else list(watched)
        probe = url_probe(check) if isinstance(check, str) else check
        label = what or ", ".join(r.name for r in records)
        started = time.monotonic()
        while True:
            for record in records:
                if not record.alive():
                    raise SupervisorError(
                        f"{record.name} exited during start-up{_exit_note(record.pid)}; "
                        f"last lines of {record.log}:\n{tail(record.log)}"
                    )
            if probe():
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                logs = "\n".join(f"--- {r.log}\n{tail(r.log)}" for r in records)
                raise SupervisorError(f"{label} not healthy after {timeout_s:.0f} s:\n{logs}")
            time.sleep(interval_s)

    # --- stop -------------------------------------------------------------------------
    def stop(
        self, names: Iterable[str] | None = None, timeout_s: float = 20.0
    ) -> dict[str, StopResult]:
        """Stop the named processes (default: all) and drop them from the state file;
        the file goes once nothing is left in it. The others first, then ``stop_last``."""
        state = self.read()
        if state is None:
            return {}
        wanted = None if names is None else set(names)
        chosen = [p for p in state.processes if wanted is None or p.name in wanted]
        results = stop_processes([p for p in chosen if not p.stop_last], timeout_s)
        results.update(stop_processes([p for p in chosen if p.stop_last], timeout_s))
        state.processes = [p for p in state.processes if p not in chosen]
        if state.processes:
            self.write(state)
        else:
            self.clear()
        return results


def stop_processes(records: Sequence[ProcessRecord], timeout_s: float) -> dict[str, StopResult]:
    """Send each record its stop signal at once, wait up to ``timeout_s`` for all, then
    SIGKILL each group and every remembered descendant still alive."""
    targets: dict[str, list[psutil.Process]] = {}
    results: dict[str, StopResult] = {}
    for record in records:
        leader = record.process()
        # Remember the tree now: a descendant that called setsid left the group.
        members = _unique(
            [
                *([leader] if leader else []),
                *(_descendants(record.pid) if leader else []),
                *_group_members(record.pgid),
            ]
        )
        if not members:
            _reap(record.pid)
            results[record.name] = StopResult("not running")
            continue
        targets[record.name] = members
        sig = signal.Signals[record.stop_signal]
        if leader is not None and not record.signal_group:
            _signal(leader, sig)
        else:
            _signal_group(record.pgid, sig)
            for proc in members:
                if _pgid(proc) != record.pgid:
                    _signal(proc, sig)
    deadline = time.monotonic() + timeout_s
    for record in records:
        if record.name not in targets:
            continue
        alive = _wait_gone(targets[record.name], deadline - time.monotonic())
        survivors = _unique([*alive, *_group_members(record.pgid)])
        survivors = _unique([*survivors, *(d for p in survivors for d in _descendants(p.pid))])
        if survivors:
            _signal_group(record.pgid, signal.SIGKILL)
            for proc in survivors:
                _signal(proc, signal.SIGKILL)
            _wait_gone(survivors, KILL_WAIT_S)
            results[record.name] = StopResult("killed", sorted(p.pid for p in survivors))
        else:
            results[record.name] = StopResult("terminated")
        _reap(record.pid)
        _await_collection(targets[record.name], REAP_WAIT_S)
    return results


def pss_bytes(pids: Iterable[int]) -> int:
    """Proportional set size summed over ``pids``: pages shared between forks are split
    between their sharers rather than counted once per process."""
    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += psutil.Process(pid).memory_full_info().pss
    return total


def run_to_completion(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    log: Path | str,
    timeout_s: float,
    cwd: Path | str | None = None,
    user: str | None = None,
    what: str | None = None,
) -> None:
    """Run a one-off command (a migration, initdb) in its own group, output appended to
    ``log``; its group is killed on timeout or interrupt. A non-zero exit is an error
    that quotes the log's last lines."""
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    label = what or " ".join([Path(command[0]).name, *command[1:]])
    with log.open("ab") as out:
        try:
            proc = subprocess.Popen(
                list(command),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **_as_user(user),
            )
        except OSError as err:
            raise SupervisorError(f"`{label}`: cannot start {command[0]}: {err}") from None
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            raise SupervisorError(
                f"`{label}` did not finish within {timeout_s:.0f} s; last lines of {log}:\n"
                f"{tail(log)}"
            ) from None
        except BaseException:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    if code != 0:
        raise SupervisorError(f"`{label}` exited with {code}; last lines of {log}:\n{tail(log)}")


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """Turn SIGINT/SIGTERM/SIGHUP into KeyboardInterrupt while starting, so that the
    caller's cleanup runs and stops what was started."""
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


# --- small helpers ------------------------------------------------------------------


def url_probe(url: str, timeout_s: float = 3.0) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            return httpx.get(url, timeout=timeout_s).status_code == 200
        except httpx.HTTPError:
            return False

    return probe


def tail(path: Path | str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _as_user(user: str | None) -> dict[str, Any]:
    """Popen arguments that run the child as ``user`` (its group, no extra groups)."""
    if user is None:
        return {}
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise SupervisorError(f"user {user!r} does not exist") from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _create_time(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return time.time()


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is an exited child of ours (no zombie left)."""
    popen = _SPAWNED.get(pid)
    if popen is not None:
        popen.poll()  # kept afterwards: its exit code names why a start failed
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _exit_note(pid: int) -> str:
    popen = _SPAWNED.get(pid)
    code = popen.poll() if popen is not None else None
    return "" if code is None else f" (exit code {code})"


def _gone(proc: psutil.Process) -> bool:
    _reap(proc.pid)
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False


def _wait_gone(procs: Sequence[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until every process exited (zombies count as exited); return those alive."""
    deadline = time.monotonic() + max(timeout_s, 0.1)
    alive = [p for p in procs if not _gone(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if not _gone(p)]
    return alive


def _await_collection(procs: Sequence[psutil.Process], timeout_s: float) -> None:
    """Wait (bounded) until exited processes are gone from the process table."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc in procs:
            _reap(proc.pid)
        if not any(_exists(p) for p in procs):
            return
        time.sleep(0.05)


def _exists(proc: psutil.Process) -> bool:
    try:
        return proc.is_running()
    except psutil.Error:
        return False


def _unique(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    return list({p.pid: p for p in procs if not _gone(p)}.values())


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        if _pgid(proc) == pgid and not _gone(proc):
            members.append(proc)
    return members


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal(proc: psutil.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(psutil.Error):
        proc.send_signal(sig)


def _child_pids() -> set[int]:
    return {c.pid for c in psutil.Process().children()}


def _kill_new_children(before: set[int]) -> None:
    """Kill the children (and their groups) that appeared since ``before``."""
    for pid in _child_pids() - before:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getsid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)
