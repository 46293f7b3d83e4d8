"""What the benchmark harness uses beyond run_pipeline: services info and workloads."""

from __future__ import annotations

import psutil
import pytest

from benchmarks.tools.airflow.adapter import AirflowAdapter
from benchmarks.tools.airflow.services import COMPONENTS, pss_bytes
from shared_ml.workloads import workload_graph
from tests.airflow.conftest import AirflowTestInstance

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def adapter(airflow: AirflowTestInstance) -> AirflowAdapter:
    settings = airflow.services.settings
    return AirflowAdapter(profile=settings.profile, settings=settings)


def test_start_services_reports_the_running_install(
    adapter: AirflowAdapter, airflow: AirflowTestInstance
) -> None:
    info = adapter.start_services()  # already running: reports it, starts nothing
    assert info is not None and info.url == airflow.services.settings.url
    components = set(info.details["components"].values())
    assert len(components) == len(COMPONENTS) and components <= set(info.pids)
    assert len(info.pids) > len(COMPONENTS)  # LocalExecutor workers are children
    assert all(psutil.pid_exists(pid) for pid in components)
    assert info.cold_start_s and info.cold_start_s > 0
    assert pss_bytes(adapter.service_pids()) > 0


def test_chain_workload_runs_in_order(adapter: AirflowAdapter) -> None:
    result = adapter.run_workload("chain", 10)
    assert result.status == "success"
    graph = workload_graph("chain", 10)
    assert {t.task for t in result.tasks} == set(graph)
    assert all(t.state == "success" and t.try_number == 1 for t in result.tasks)
    started = {t.task: t.started_at for t in result.tasks}
    ended = {t.task: t.ended_at for t in result.tasks}
    for task, upstream in graph.items():
        for parent in upstream:
            assert ended[parent] <= started[task], (parent, task)
    assert result.end_to_end_s > 0
    timings = adapter.task_timings(result.run_id)
    assert {t.task for t in timings} == set(graph)
