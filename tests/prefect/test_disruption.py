"""The benchmark's kill_worker and restart_scheduler scenarios against the real server and
worker: the harness kills (or restarts) the worker while a train branch runs, and what it
records (terminal state, duplicates, lost attempts, what was killed) agrees with what
Prefect's own API says about the run afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.harness.plan import make_plan
from benchmarks.harness.recovery_counts import duplicate_executions, lost_attempts
from benchmarks.harness.scenarios_disruption import (
    scenario_kill_worker,
    scenario_restart_scheduler,
)
from benchmarks.harness.session import Collected, Session, guarded
from benchmarks.tools.prefect.adapter import PrefectAdapter
from benchmarks.tools.prefect.client import PrefectClient
from benchmarks.tools.prefect.services import PrefectServices
from shared_ml.config import load_config
from shared_ml.records import read_step_records

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture(scope="module")
def session(adapter: PrefectAdapter, config_path: Path, tmp_path_factory) -> Session:
    plan = make_plan(
        tools=["prefect"],
        scenarios=["kill_worker", "restart_scheduler"],
        profiles=["tuned"],
        repeat=1,
        quick=True,
        target="local",
        urls={},
        output_dir=tmp_path_factory.mktemp("disruption"),
        pipeline_config=config_path,
        environ={},
    )
    plan.restart_delay_s = 6.0
    # A run the tool never ends (a flow run whose worker restarted) is reported, not
    # waited for: the scenario waits this long for its end, then reads its state.
    plan.run_timeout_s = 30.0
    plan.disruption_timeout_s = 90.0
    work = plan.output_dir / "work"
    return Session(plan, "prefect", "tuned", 0, adapter, "in-process", Collected(), work)


def worker_pid(services: PrefectServices) -> int:
    state = services.read_state()
    assert state is not None
    [worker] = [e for e in state.processes if e.name == "worker" and e.alive()]
    return worker.pid


def figures(session: Session, scenario: str) -> dict[str, float]:
    prefix = f"recovery.{scenario}_"
    return {
        o["figure"].removeprefix(prefix): o["value"]
        for o in session.collected.observations
        if o["figure"].startswith(prefix)
    }


def notes(session: Session, scenario: str) -> list[str]:
    return [
        o["reason"]
        for o in session.collected.outcomes
        if o["scenario"] == scenario and o["figure"] and o["status"] == "ok"
    ]


def check_against_prefect(session: Session, scenario: str, client: PrefectClient) -> None:
    """The recorded terminal state and counts are those of the run as Prefect reports it
    and as its step records stand."""
    measured = figures(session, scenario)
    print(scenario, measured, notes(session, scenario))  # shown with -s: what happened
    root = runs_root(session, scenario)
    [run_id] = [p.name for p in root.iterdir() if p.is_dir()]
    [flow_run] = client.read_flow_runs(names=[run_id])
    state = flow_run["state"]["type"]
    if any("no terminal state within" in n for n in notes(session, scenario)):
        assert measured["completed"] == 0.0 and state not in TERMINAL, state
        return
    assert state in TERMINAL
    assert measured["completed"] == (1.0 if state == "COMPLETED" else 0.0), state
    steps = read_step_records(str(root), run_id)
    assert measured["duplicates"] == len(duplicate_executions(steps))
    assert measured["lost_attempts"] == len(lost_attempts(steps))
    assert "registry_versions" in measured


def runs_root(session: Session, scenario: str) -> Path:
    config = session.work_dir / "configs" / f"prefect-tuned-r0-{scenario}.yaml"
    return Path(load_config(config).storage.runs_root)


def test_kill_worker_kills_only_the_worker_and_reads_the_end_from_prefect(
    session: Session, adapter: PrefectAdapter, client: PrefectClient
) -> None:
    before = worker_pid(adapter.services)
    with guarded(session, "kill_worker"):
        scenario_kill_worker(session)
    status = [o for o in session.collected.outcomes if o["figure"] is None][-1]
    assert status["status"] == "ok", status
    [killed, *_] = notes(session, "kill_worker")
    assert f"pid {before}" in killed and "new worker was started" in killed
    after = worker_pid(adapter.services)
    assert after != before  # the supervisor's replacement
    check_against_prefect(session, "kill_worker", client)


def test_restart_scheduler_restarts_the_worker_and_reads_the_end_from_prefect(
    session: Session, adapter: PrefectAdapter, client: PrefectClient
) -> None:
    before = worker_pid(adapter.services)
    with guarded(session, "restart_scheduler"):
        scenario_restart_scheduler(session)
    status = [o for o in session.collected.outcomes if o["figure"] is None][-1]
    assert status["status"] == "ok", status
    assert any(
        "worker stopped (SIGTERM) and started again" in n
        for n in notes(session, "restart_scheduler")
    )
    assert worker_pid(adapter.services) != before
    check_against_prefect(session, "restart_scheduler", client)
