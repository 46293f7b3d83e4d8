"""One supervisor for the local services of every tool: Airflow, Prefect and PostgreSQL.

Each supervised process leads its own process group (``start_new_session``) and writes its
output to a log file. What runs is recorded in a JSON state file (name, pid, process group,
start time, command and log of each process, plus the owner's details), so that another
shell can inspect and stop it. Stopping sends each process's stop signal to its group,
waits, then SIGKILLs whatever is left, including descendants that moved to a group of
their own. A zombie counts as gone: it holds nothing but its pid; ours are reaped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks.services.processes import (
    KILL_WAIT_S,
    REAP_WAIT_S,
    SPAWNED,
    SupervisorError,
    await_collection,
    child_pids,
    descendants,
    exit_note,
    free_port,
    group_members,
    group_of,
    kill_new_children,
    live_process,
    live_unique,
    popen_user_args,
    port_is_free,
    pss_bytes,
    reap,
    run_to_completion,
    send_signal,
    signal_process_group,
    signals_as_interrupts,
    start_time_of,
    tail,
    url_probe,
    wait_exited,
)

# Set in every supervised process's environment: the state file that owns it.
SUPERVISOR_ENV = "ORCHBENCH_SUPERVISOR_STATE"

# Re-exported: the service managers import these from here.
__all__ = [
    "ProcessRecord",
    "StopResult",
    "SupervisedState",
    "Supervisor",
    "SupervisorError",
    "free_port",
    "live_process",
    "port_is_free",
    "pss_bytes",
    "run_to_completion",
    "signals_as_interrupts",
    "tail",
    "url_probe",
]


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
                found.update(p.pid for p in descendants(record.pid))
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
        before = child_pids()
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
                    **popen_user_args(user),
                )
        except OSError as err:
            raise SupervisorError(f"{name}: cannot start {command[0]}: {err}") from None
        except BaseException:
            # Interrupted inside Popen, after the fork: no record will name that child.
            kill_new_children(before)
            raise
        SPAWNED[proc.pid] = proc
        try:
            record = ProcessRecord(
                name=name,
                pid=proc.pid,
                create_time=start_time_of(proc.pid),
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
            signal_process_group(proc.pid, signal.SIGKILL)
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
                        f"{record.name} exited during start-up{exit_note(record.pid)}; "
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
        members = live_unique(
            [
                *([leader] if leader else []),
                *(descendants(record.pid) if leader else []),
                *group_members(record.pgid),
            ]
        )
        if not members:
            reap(record.pid)
            results[record.name] = StopResult("not running")
            continue
        targets[record.name] = members
        sig = signal.Signals[record.stop_signal]
        if leader is not None and not record.signal_group:
            send_signal(leader, sig)
        else:
            signal_process_group(record.pgid, sig)
            for proc in members:
                if group_of(proc) != record.pgid:
                    send_signal(proc, sig)
    deadline = time.monotonic() + timeout_s
    for record in records:
        if record.name not in targets:
            continue
        alive = wait_exited(targets[record.name], deadline - time.monotonic())
        survivors = live_unique([*alive, *group_members(record.pgid)])
        survivors = live_unique([*survivors, *(d for p in survivors for d in descendants(p.pid))])
        if survivors:
            signal_process_group(record.pgid, signal.SIGKILL)
            for proc in survivors:
                send_signal(proc, signal.SIGKILL)
            wait_exited(survivors, KILL_WAIT_S)
            results[record.name] = StopResult("killed", sorted(p.pid for p in survivors))
        else:
            results[record.name] = StopResult("terminated")
        reap(record.pid)
        await_collection(targets[record.name], REAP_WAIT_S)
    return results
