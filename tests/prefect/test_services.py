"""`orchbench prefect up|status|down` on its own home and port: no orphans afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

from benchmarks.environments import REPO_ROOT
from benchmarks.tools.prefect.services import free_port


def orchbench(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.cli", "prefect", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_up_status_down_leaves_no_orphans(tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    port = free_port()
    try:
        up = orchbench(
            "up", "--home", str(home), "--port", str(port), "--profile", "tuned", "--no-deploy"
        )
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"UI: http://127.0.0.1:{port}" in up.stdout
        assert "UI login: no login" in up.stdout
        status = orchbench("status", "--home", str(home), "--json")
        assert status.returncode == 0, status.stderr
        info = json.loads(status.stdout)
        assert info["healthy"] and info["profile"] == "tuned"
        assert set(info["processes"]) == {"server", "worker"}
        pids = info["pids"]
        groups = {info["processes"][name]["pid"] for name in ("server", "worker")}
        assert all(alive(pid) for pid in pids)
        assert (home / "prefect.db").exists()  # SQLite in the project-local home

        again = orchbench("up", "--home", str(home), "--port", str(port))
        assert again.returncode == 2 and "already running" in again.stderr
    finally:
        down = orchbench("down", "--home", str(home))
    assert down.returncode == 0, down.stderr
    assert not [pid for pid in pids if alive(pid)]
    leftovers = []
    for proc in psutil.process_iter():
        try:
            if proc.pid in groups or os.getpgid(proc.pid) in groups:
                leftovers.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    assert not leftovers
    after = orchbench("status", "--home", str(home))
    assert after.returncode == 1 and "not running" in after.stdout


def test_up_with_an_unknown_profile_exits_2_with_one_line(tmp_path: Path) -> None:
    done = orchbench("up", "--home", str(tmp_path), "--profile", "fast")
    assert done.returncode == 2
    assert "--profile 'fast'" in done.stderr
    assert "Traceback" not in done.stderr


def test_up_on_a_port_another_program_listens_on_exits_2_naming_it(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        done = orchbench("up", "--home", str(tmp_path), "--port", str(port), "--no-deploy")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"port {port} on 127.0.0.1 is in use" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
    assert not any(tmp_path.rglob("*.json")), "no state recorded for services never started"
