"""Process-level tools the service supervisor is built from: liveness by pid and start
time, reaping, process groups and trees, signals, ports and one-off commands."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil

KILL_WAIT_S = 5.0
# How long a stop waits for the zombies it left to be collected by their parent (init, for
# a group whose leader died): they are no longer waited for as processes, but a caller that
# lists the group right after the stop should find it empty.
REAP_WAIT_S = 3.0

# The Popen objects of the processes this Python process started, by pid: polling them
# reaps our exited children without confusing the subprocess module.
SPAWNED: dict[int, subprocess.Popen[bytes]] = {}


class SupervisorError(RuntimeError):
    """A process could not be started, become healthy or be stopped; the message says which."""


def live_process(pid: int, create_time: float) -> psutil.Process | None:
    """The process ``pid`` if it still runs and is the one started at ``create_time``
    (a pid reused by an unrelated process after ours exited does not count); a zombie
    counts as gone."""
    reap(pid)
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > 1.0:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except psutil.NoSuchProcess:
        return None


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
                **popen_user_args(user),
            )
        except OSError as err:
            raise SupervisorError(f"`{label}`: cannot start {command[0]}: {err}") from None
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            signal_process_group(proc.pid, signal.SIGKILL)
            proc.wait()
            raise SupervisorError(
                f"`{label}` did not finish within {timeout_s:.0f} s; last lines of {log}:\n"
                f"{tail(log)}"
            ) from None
        except BaseException:
            signal_process_group(proc.pid, signal.SIGKILL)
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
    """Whether a server could bind 127.0.0.1:``port`` now. The test bind sets
    SO_REUSEADDR, as the servers started here do (uvicorn, PostgreSQL): closed connections
    still in TIME_WAIT, left by a server stopped a moment ago, do not hold the port then."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def accepts_connections(port: int, timeout_s: float = 0.5) -> bool:
    """Whether something listens on 127.0.0.1:``port`` (a straggler of a stopped server
    may keep listening for a moment)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def popen_user_args(user: str | None) -> dict[str, Any]:
    """Popen arguments that run the child as ``user`` (its group, no extra groups)."""
    if user is None:
        return {}
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise SupervisorError(f"user {user!r} does not exist") from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def start_time_of(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return time.time()


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is an exited child of ours (no zombie left)."""
    popen = SPAWNED.get(pid)
    if popen is not None:
        popen.poll()  # kept afterwards: its exit code names why a start failed
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def exit_note(pid: int, timeout_s: float = 5.0) -> str:
    """The text " (exit code N)" for a child of ours that exited, else "". Waits a moment: a
    multithreaded process's leader shows as a zombie before its last threads are gone,
    and until then waitpid has no status to give (a bare poll() raced that)."""
    popen = SPAWNED.get(pid)
    if popen is None:
        return ""
    try:
        code = popen.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return ""
    return f" (exit code {code})"


def has_exited(proc: psutil.Process) -> bool:
    reap(proc.pid)
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False


def wait_exited(procs: Sequence[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until every process exited (zombies count as exited); return those alive."""
    deadline = time.monotonic() + max(timeout_s, 0.1)
    alive = [p for p in procs if not has_exited(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if not has_exited(p)]
    return alive


def await_collection(procs: Sequence[psutil.Process], timeout_s: float) -> None:
    """Wait (bounded) until exited processes are gone from the process table."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc in procs:
            reap(proc.pid)
        if not any(in_process_table(p) for p in procs):
            return
        time.sleep(0.05)


def in_process_table(proc: psutil.Process) -> bool:
    try:
        return proc.is_running()
    except psutil.Error:
        return False


def live_unique(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    return list({p.pid: p for p in procs if not has_exited(p)}.values())


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def group_of(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None


def group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        if group_of(proc) == pgid and not has_exited(proc):
            members.append(proc)
    return members


def signal_process_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def send_signal(proc: psutil.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(psutil.Error):
        proc.send_signal(sig)


def child_pids() -> set[int]:
    return {c.pid for c in psutil.Process().children()}


def kill_new_children(before: set[int]) -> None:
    """Kill the children (and their groups) that appeared since ``before``."""
    for pid in child_pids() - before:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getsid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)
