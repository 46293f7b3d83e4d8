"""The service supervisor against real short-lived processes: python sleepers, an
http.server on a free port, a grandchild that left the group, zombies."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from benchmarks.services.processes import SPAWNED, exit_note
from benchmarks.services.supervisor import (
    Supervisor,
    SupervisorError,
    free_port,
    run_to_completion,
)

ENV = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}

# The leader forks a child that ignores SIGTERM (same group) and a grandchild that calls
# setsid (its own group, also ignoring SIGTERM), writes their pids, then sleeps.
FAMILY = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time
    # Each says it is ready once it ignores SIGTERM: before that, under load, a SIGTERM
    # would still end it, and the stop would not need its SIGKILL.
    stubborn = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "open(sys.argv[1], 'w').close(); time.sleep(600)"
    )
    ready = [sys.argv[1] + ".child", sys.argv[1] + ".grandchild"]
    child = subprocess.Popen([sys.executable, "-c", stubborn, ready[0]])
    grandchild = subprocess.Popen(
        [sys.executable, "-c", stubborn, ready[1]], start_new_session=True
    )
    while not all(os.path.exists(r) for r in ready):
        time.sleep(0.05)
    with open(sys.argv[1] + ".tmp", "w") as fh:
        json.dump({"child": child.pid, "grandchild": grandchild.pid}, fh)
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    time.sleep(600)
    """
)

# The leader forks a child that exits at once and is never waited for: a zombie in the group.
ZOMBIE_PARENT = textwrap.dedent(
    """
    import os, sys, time
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    with open(sys.argv[1], "w") as fh:
        fh.write(str(pid))
    time.sleep(600)
    """
)


def wait_for(predicate, what: str, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen within {timeout_s} s")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def supervisor(tmp_path: Path):
    sup = Supervisor(tmp_path / "run" / "state.json")
    yield sup
    sup.stop(timeout_s=5)  # whatever a failed test left running


def test_start_health_state_and_stop(supervisor: Supervisor, tmp_path: Path) -> None:
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    record = supervisor.spawn("http", command, env=ENV, log=tmp_path / "http.log", cwd=tmp_path)
    supervisor.wait_healthy(record, f"http://127.0.0.1:{port}/", timeout_s=60)
    supervisor.update(url=f"http://127.0.0.1:{port}")

    # Another shell sees the same processes and details through the state file.
    other = Supervisor(tmp_path / "run" / "state.json").read()
    assert other is not None
    seen = other.get("http")
    assert seen is not None and (seen.pid, seen.pgid) == (record.pid, record.pid)
    assert seen.command == command and seen.log == str(tmp_path / "http.log")
    assert other.details == {"url": f"http://127.0.0.1:{port}"}
    assert (tmp_path / "run" / "state.json").stat().st_mode & 0o777 == 0o600
    assert set(Supervisor(supervisor.state_file).running()) == {"http"}
    assert record.pid in supervisor.pids()

    result = Supervisor(supervisor.state_file).stop(timeout_s=30)
    assert result["http"].outcome == "terminated"
    assert gone(record.pid)
    assert not supervisor.state_file.exists()
    assert supervisor.stop() == {}


def test_stop_kills_the_group_and_a_grandchild_that_left_it(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    pids_file = tmp_path / "pids.json"
    record = supervisor.spawn(
        "family", [sys.executable, "-c", FAMILY, str(pids_file)], env=ENV, log=tmp_path / "f.log"
    )
    family = wait_for(lambda: pids_file.exists() and json.loads(pids_file.read_text()), "pids")
    assert psutil.Process(family["grandchild"]).pid != record.pgid
    assert set(supervisor.pids()) >= {record.pid, family["child"], family["grandchild"]}

    result = supervisor.stop(timeout_s=1)
    # Both children ignore SIGTERM: only SIGKILL ends them.
    assert result["family"].outcome == "killed"
    # The grandchild left the group: only the descendant sweep finds it. (The child may
    # already be gone with the group's SIGKILL before the sweep lists it, under load.)
    assert family["grandchild"] in result["family"].killed_pids
    for pid in (record.pid, family["child"], family["grandchild"]):
        assert wait_for(lambda pid=pid: gone(pid), f"pid {pid} gone", timeout_s=10)


def test_a_process_that_dies_fails_the_health_wait_with_its_log(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    command = [sys.executable, "-c", "import sys; print('config is broken'); sys.exit(3)"]
    record = supervisor.spawn("broken", command, env=ENV, log=tmp_path / "broken.log")
    with pytest.raises(SupervisorError) as failure:
        supervisor.wait_healthy(record, lambda: False, timeout_s=300)
    message = str(failure.value)
    assert "broken exited during start-up (exit code 3)" in message
    assert "config is broken" in message


def test_health_wait_gives_up_after_its_timeout(supervisor: Supervisor, tmp_path: Path) -> None:
    command = [sys.executable, "-c", "print('still booting'); import time; time.sleep(600)"]
    record = supervisor.spawn("slow", command, env=ENV, log=tmp_path / "slow.log")
    with pytest.raises(SupervisorError, match="slow not healthy after 1 s") as failure:
        supervisor.wait_healthy(record, lambda: False, timeout_s=1)
    assert "still booting" in str(failure.value)


def test_an_exited_leader_is_not_running_and_gets_reaped(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    record = supervisor.spawn(
        "quick", [sys.executable, "-c", "pass"], env=ENV, log=tmp_path / "q.log"
    )
    # Our exited child stays a zombie until collected; it must count as gone.
    wait_for(lambda: not record.alive(), "the leader's exit")
    assert supervisor.running() == {}
    assert supervisor.stop()["quick"].outcome == "not running"
    assert gone(record.pid)


def test_a_zombie_in_the_group_does_not_hold_up_the_stop(
    supervisor: Supervisor, tmp_path: Path
) -> None:
    zombie_file = tmp_path / "zombie"
    record = supervisor.spawn(
        "parent",
        [sys.executable, "-c", ZOMBIE_PARENT, str(zombie_file)],
        env=ENV,
        log=tmp_path / "z.log",
    )
    zombie = int(wait_for(lambda: zombie_file.exists() and zombie_file.read_text(), "fork"))
    wait_for(lambda: psutil.Process(zombie).status() == psutil.STATUS_ZOMBIE, "the zombie")

    result = supervisor.stop(timeout_s=60)
    assert result["parent"].outcome == "terminated"  # not "killed": the zombie was skipped
    assert gone(record.pid)


def test_unreadable_state_file_names_the_file(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    state_file.write_text("{not json")
    with pytest.raises(SupervisorError, match=r"state\.json: unreadable state file"):
        Supervisor(state_file).read()


def test_a_failing_one_off_command_quotes_its_log(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import sys; print('no such table'); sys.exit(2)"]
    with pytest.raises(SupervisorError, match="exited with 2") as failure:
        run_to_completion(command, env=ENV, log=tmp_path / "migrate.log", timeout_s=120)
    assert "no such table" in str(failure.value)


def test_an_interrupt_while_recording_a_spawn_kills_that_process(
    supervisor: Supervisor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C landing while the state file is written: the process it names must not live
    on unrecorded, and the interrupt itself reaches the caller (whose cleanup then runs).
    The first version raised a TypeError here instead: a parameter shadowed the helper."""
    started: list[int] = []
    real_popen = subprocess.Popen

    def recording_popen(*args, **kwargs):
        proc = real_popen(*args, **kwargs)
        started.append(proc.pid)
        return proc

    def interrupted_write(state) -> None:
        raise KeyboardInterrupt("Ctrl-C during the state file's write")

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    monkeypatch.setattr(supervisor, "write", interrupted_write)
    command = [sys.executable, "-c", "import time; time.sleep(600)"]
    with pytest.raises(KeyboardInterrupt):
        supervisor.spawn("sleeper", command, env=ENV, log=tmp_path / "sleeper.log")
    assert len(started) == 1
    assert gone(started[0])


def test_a_port_left_in_time_wait_by_a_stopped_server_is_free_again() -> None:
    """A server stopped while clients were connected leaves its side of those connections
    in TIME_WAIT for a minute; a new server (SO_REUSEADDR, as uvicorn) can bind at once, so
    the free-port check must not refuse it. A port with a listener stays taken."""
    import socket

    from benchmarks.services.processes import port_is_free

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    assert not port_is_free(port)
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its end goes to TIME_WAIT
    server.close()
    client.recv(1)  # the server's FIN has arrived
    client.close()
    # The TIME_WAIT is there: a bind without the option fails.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))
    assert port_is_free(port)


# The main thread ends alone (pthread_exit), a second thread ends the process a moment
# later: meanwhile the leader is a zombie but waitpid has no status yet, as with a killed
# Airflow scheduler whose threads are still being torn down.
LEADER_GONE_FIRST = textwrap.dedent(
    """
    import ctypes, os, threading, time
    def end_later():
        time.sleep(1.0)
        os._exit(7)
    threading.Thread(target=end_later).start()
    ctypes.CDLL(None).pthread_exit(None)
    """
)


def test_the_exit_code_is_named_even_while_the_leader_is_a_zombie_before_its_threads() -> None:
    proc = subprocess.Popen([sys.executable, "-c", LEADER_GONE_FIRST], env=ENV)
    SPAWNED[proc.pid] = proc
    try:
        while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.01)
        assert proc.poll() is None  # the state the race was in: no status to read yet
        assert exit_note(proc.pid) == " (exit code 7)"
    finally:
        SPAWNED.pop(proc.pid, None)
        proc.kill()
        proc.wait()
