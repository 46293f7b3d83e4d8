"""The no-op scaling workload flow and the adapter's service/timing accessors."""

from __future__ import annotations

from benchmarks.tools.prefect.adapter import PrefectAdapter
from benchmarks.tools.prefect.client import PrefectClient
from benchmarks.tools.prefect.services import ServicesState
from benchmarks.tools.prefect.task_runs import task_graph_of
from shared_ml.workloads import workload_graph


def test_fanout_workload_follows_the_workload_graph(
    adapter: PrefectAdapter, client: PrefectClient
) -> None:
    result = adapter.run_workload("fanout", 3)
    assert result.status == "completed"
    task_runs = client.read_task_runs(result.details["flow_run_id"])
    assert task_graph_of(task_runs) == {
        name: frozenset(ups) for name, ups in workload_graph("fanout", 3).items()
    }
    timings = adapter.task_timings(result.run_id)
    assert sorted(t.task for t in timings) == sorted(workload_graph("fanout", 3))
    assert all(t.started_at and t.ended_at and t.state == "Completed" for t in timings)


def test_service_pids_cover_server_and_worker(adapter: PrefectAdapter) -> None:
    # The services as they are now: an earlier test (test_disruption) restarts the worker,
    # so the session fixture's snapshot may name a worker that is gone.
    state = adapter.services.read_state()
    assert state is not None and {e.name for e in state.processes} >= {"server", "worker"}
    assert {e.pid for e in state.processes} <= set(adapter.service_pids())


def test_restart_services_brings_the_server_back_and_keeps_the_worker(
    adapter: PrefectAdapter, client: PrefectClient, services: ServicesState
) -> None:
    before = {e.name: e.pid for e in adapter.services.read_state().processes}
    adapter.restart_services()
    after = {e.name: e.pid for e in adapter.services.read_state().processes}
    assert client.healthy()
    assert after["server"] != before["server"]
    assert after["worker"] == before["worker"]
    assert after["worker"] in adapter.service_pids()
