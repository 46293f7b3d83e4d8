"""`orchbench airflow up|status|down` as a user runs it: a second, private install."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from benchmarks.tools.airflow.services import COMPONENTS, ServiceState, free_port
from tests.airflow.conftest import AirflowTestInstance

pytestmark = pytest.mark.slow


def _orchbench(*args: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.cli", "airflow", *args]


def _tree(pids: list[int]) -> list[psutil.Process]:
    found = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                found[proc.pid] = proc
        except psutil.NoSuchProcess:
            continue
    return list(found.values())


def _groups_alive(pgids: set[int]) -> list[psutil.Process]:
    alive = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) in pgids and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return alive


@pytest.fixture
def cli_home(airflow: AirflowTestInstance, tmp_path: Path):
    """An AIRFLOW_HOME with a freshly migrated DB; always `down` at the end."""
    home = tmp_path / "airflow_home"
    home.mkdir()
    shutil.copy(airflow.template_db, home / "airflow.db")
    env = {**os.environ, "ORCHBENCH_HOME": str(tmp_path / "orchbench")}
    # No e-mail alerts; and never the user's own metadata DB.
    for variable in (
        "ORCHBENCH_SMTP_HOST",
        "ORCHBENCH_ALERT_EMAIL_TO",
        "ORCHBENCH_AIRFLOW_DB_URL",
        "ORCHBENCH_AIRFLOW_DB",
    ):
        env.pop(variable, None)
    yield home, env
    if (home / "run" / "services.json").exists():  # a failed test left them running
        subprocess.run(_orchbench("down", "--home", str(home)), env=env, timeout=120, check=False)


def test_up_status_down_leaves_no_orphans(cli_home) -> None:
    home, env = cli_home
    port = free_port()
    state_file = home / "run" / "services.json"

    # 1. `up` interrupted half-way (Ctrl-C) stops what it had started.
    up_output = home.parent / "interrupted-up.txt"
    with up_output.open("wb") as out:
        starting = subprocess.Popen(
            _orchbench("up", "--home", str(home), "--port", str(port)),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    # Interrupt as soon as the first component is spawned: health is seconds away then,
    # so the Ctrl-C always lands mid-start (waiting for all three raced a fast start).
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        state = ServiceState.load(state_file) if state_file.exists() else None
        if state and state.components:
            break
        assert starting.poll() is None, "up exited before starting the components"
        time.sleep(0.05)
    else:
        pytest.fail("up did not start a component within 180 s")
    starting.send_signal(signal.SIGINT)
    code = starting.wait(timeout=120)
    assert code == 130, f"exit {code}; its output:\n{up_output.read_text(errors='replace')[-3000:]}"
    # Every component runs with AIRFLOW_HOME as its working directory: none may survive.
    survivors = []
    for proc in psutil.process_iter():
        try:
            if proc.cwd() == str(home) and proc.status() != psutil.STATUS_ZOMBIE:
                survivors.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    assert not survivors, f"orphans after an interrupted up: {survivors}"
    assert not state_file.exists()

    # 2. A normal `up`, `status`, `down` cycle.
    up = subprocess.run(
        _orchbench("up", "--home", str(home), "--port", str(port), "--profile", "tuned", "--json"),
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert up.returncode == 0, up.stderr[-2000:]
    started = json.loads(up.stdout)
    assert started["url"] == f"http://127.0.0.1:{port}" and started["profile"] == "tuned"
    # The UI and its login (Airflow's simple auth manager's generated password).
    assert started["ui_url"] == f"http://127.0.0.1:{port}/"
    login = started["login"]
    assert login["user"] == "admin"
    assert login["password"] == json.loads(Path(login["password_file"]).read_text())["admin"]
    assert started["email_alerts"] is None  # no ORCHBENCH_SMTP_* in this shell
    assert set(started["pids"]) == set(COMPONENTS)
    pids = list(started["pids"].values())
    everything = _tree(pids)
    assert len(everything) >= len(COMPONENTS)
    for proc in everything:  # every process listens on 127.0.0.1 only
        try:
            listening = [
                c for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
            ]
        except psutil.NoSuchProcess:  # a short-lived child (a parse, a task) already ended
            continue
        for conn in listening:
            assert conn.laddr.ip in ("127.0.0.1", "::1"), (proc.pid, conn)

    status = subprocess.run(
        _orchbench("status", "--home", str(home), "--json"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["healthy"] is True

    down = subprocess.run(
        _orchbench("down", "--home", str(home)),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert down.returncode == 0, down.stderr
    _gone, alive = psutil.wait_procs(everything, timeout=10)
    assert not alive, f"orphans after down: {[p.pid for p in alive]}"
    assert not _groups_alive(set(pids))

    after = subprocess.run(
        _orchbench("status", "--home", str(home)),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert after.returncode == 1


def test_up_on_a_port_another_program_listens_on_exits_2_naming_it(tmp_path: Path) -> None:
    """Refused before anything starts: no Airflow instance is needed for it."""
    import socket

    home = tmp_path / "airflow_home"
    env = {**os.environ, "ORCHBENCH_HOME": str(tmp_path / "orchbench")}
    for variable in ("ORCHBENCH_AIRFLOW_DB_URL", "ORCHBENCH_AIRFLOW_DB", "ORCHBENCH_SMTP_HOST"):
        env.pop(variable, None)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        done = subprocess.run(
            _orchbench("up", "--home", str(home), "--port", str(port)),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 2, done.stdout + done.stderr
    message = " ".join(done.stderr.split())
    assert f"port {port} on 127.0.0.1 is already in use by another program" in message
    assert "Traceback" not in done.stderr
    assert not (home / "run" / "services.json").exists()
