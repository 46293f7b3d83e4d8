"""The benchmark's path through Prefect is its production path: a flow run of a
deployment that the session's process worker picks up and runs. The adapter is built as
the harness builds it (``get_adapter`` with a tool, a target and a profile, nothing else);
what is asserted is what Prefect itself recorded of the flow run, read back through its
API into the run record's ``tool_details``."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.tools import get_adapter
from benchmarks.tools.base import WorkloadResult
from benchmarks.tools.prefect.adapter import EXECUTION_PATHS, PrefectAdapter
from benchmarks.tools.prefect.client import PrefectClient
from benchmarks.tools.prefect.services import ServicesState
from shared_ml.records import RunRecord
from shared_ml.workloads import workload_graph
from tests.moments import assert_moments_in_order


@pytest.fixture(scope="module")
def benchmark_adapter(services: ServicesState) -> PrefectAdapter:
    adapter = get_adapter("prefect", target="local", url=None, profile="tuned")
    assert isinstance(adapter, PrefectAdapter)
    return adapter


@pytest.fixture(scope="module")
def benchmark_run(benchmark_adapter: PrefectAdapter, config_path: Path) -> RunRecord:
    return benchmark_adapter.run_pipeline(config_path, run_id="prefect-benchmark-path")


@pytest.fixture(scope="module")
def benchmark_workload(benchmark_adapter: PrefectAdapter) -> WorkloadResult:
    return benchmark_adapter.run_workload("chain", 2)


def worker_name(services: ServicesState) -> str:
    """The name orchbench's service manager gives the session's worker (``prefect worker
    start --name``), read from its recorded command line."""
    [worker] = [e for e in services.processes if e.name == "worker"]
    return worker.command[worker.command.index("--name") + 1]


def test_the_benchmark_adapter_labels_its_path(benchmark_adapter: PrefectAdapter) -> None:
    assert benchmark_adapter.mode == "deployment"
    assert benchmark_adapter.execution_path == EXECUTION_PATHS["deployment"]
    assert "worker" in benchmark_adapter.execution_path


def test_a_benchmark_run_is_a_deployment_flow_run_executed_by_the_worker(
    benchmark_run: RunRecord, services: ServicesState, client: PrefectClient
) -> None:
    assert benchmark_run.status == "success"
    details = benchmark_run.tool_details
    assert details["mode"] == "deployment"
    assert details["execution_path"] == EXECUTION_PATHS["deployment"]
    execution = details["flow_run_execution"]
    assert execution["deployment_id"] == services.deployment_id
    assert execution["work_pool_name"] == services.pool
    assert execution["worker_name"] == worker_name(services)
    assert execution["worker_type"] == "process"
    assert execution["infrastructure_pid"], "the worker records the flow-run process it started"
    # Created scheduled, claimed by the worker (pending), then running in its process.
    types = [s["type"] for s in details["flow_run_states"]]
    assert types[0] == "SCHEDULED" and types[-1] == "COMPLETED"
    assert types.index("PENDING") < types.index("RUNNING")
    # The record says what the server says.
    flow_run = client.read_flow_run(details["flow_run_id"])
    assert flow_run["deployment_id"] == services.deployment_id
    assert flow_run["labels"]["prefect.worker.name"] == worker_name(services)


def test_the_benchmark_runs_task_moments_are_present_and_ordered(
    benchmark_adapter: PrefectAdapter, benchmark_run: RunRecord
) -> None:
    """Running (start_time) -> work start -> work end -> end_time for every task run,
    within the flow run's created -> end_time."""
    assert_moments_in_order(benchmark_adapter.task_timings(benchmark_run.run_id), benchmark_run)


def test_a_benchmark_workload_runs_through_the_workload_deployment_and_the_worker(
    benchmark_workload: WorkloadResult, services: ServicesState, client: PrefectClient
) -> None:
    assert benchmark_workload.status == "completed"
    assert benchmark_workload.details["execution_path"] == EXECUTION_PATHS["deployment"]
    flow_run = client.read_flow_run(benchmark_workload.details["flow_run_id"])
    deployment = client.read_deployment("orchbench-workload", "orchbench-workload")
    assert (
        flow_run["deployment_id"] == deployment["id"] == benchmark_workload.details["deployment_id"]
    )
    assert flow_run["work_pool_name"] == services.pool
    assert flow_run["labels"]["prefect.worker.name"] == worker_name(services)
    assert sorted(t.task for t in benchmark_workload.tasks) == sorted(workload_graph("chain", 2))
