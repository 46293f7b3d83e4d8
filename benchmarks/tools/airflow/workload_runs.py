"""The no-op scaling workloads (DAGs ``orchbench_{chain,fanout}_{1,10,50}``), one run or
several at once, as a part of the adapter."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from benchmarks.tools.airflow.client import AirflowClient, parse_time
from benchmarks.tools.airflow.dags import (
    RUN_TIMEOUT_S,
    WORKLOAD_SIZES,
    accepted_at,
    task_timing,
    workload_dag_id,
)
from benchmarks.tools.base import WorkloadResult, WorkloadShape, with_noop_moments
from shared_ml.runner import new_run_id
from shared_ml.workloads import WORKLOAD_DIR


class WorkloadRuns:
    """Uses the adapter's ``_running``, ``_state``, ``_run_dags`` and ``poll_interval_s``."""

    def run_workloads_at_once(
        self, shape: WorkloadShape, size: int, count: int
    ) -> list[WorkloadResult | BaseException]:
        """Trigger ``count`` runs of the workload DAG, then wait for each (see
        ``run_pipelines_at_once``)."""
        self._check_workload_size(size)
        dag_id = workload_dag_id(shape, size)
        with self._running() as client:
            client.wait_for_dag(dag_id)
            triggered: list[tuple[str, datetime]] = []
            for _ in range(count):
                run_id = new_run_id(f"airflow-{shape}{size}")
                triggered.append((run_id, datetime.now(UTC)))
                client.trigger(dag_id, run_id=run_id)
                self._run_dags[run_id] = dag_id
            results: list[WorkloadResult | BaseException] = []
            for run_id, triggered_at in triggered:
                try:
                    results.append(self._workload_result(client, shape, size, run_id, triggered_at))
                except Exception as err:
                    results.append(err)
        return results

    @staticmethod
    def _check_workload_size(size: int) -> None:
        if size not in WORKLOAD_SIZES:
            raise ValueError(
                f"no Airflow workload DAG of size {size}; pipelines/airflow/workloads.py "
                f"defines sizes {WORKLOAD_SIZES}"
            )

    def run_workload(self, shape: WorkloadShape, size: int) -> WorkloadResult:
        self._check_workload_size(size)
        dag_id = workload_dag_id(shape, size)
        run_id = new_run_id(f"airflow-{shape}{size}")
        with self._running() as client:
            client.wait_for_dag(dag_id)
            triggered_at = datetime.now(UTC)
            client.trigger(dag_id, run_id=run_id)
            self._run_dags[run_id] = dag_id
            return self._workload_result(client, shape, size, run_id, triggered_at)

    def _workload_result(
        self,
        client: AirflowClient,
        shape: WorkloadShape,
        size: int,
        run_id: str,
        triggered_at: datetime,
    ) -> WorkloadResult:
        dag_id = workload_dag_id(shape, size)
        run = client.wait_for_run(
            dag_id, run_id, timeout_s=RUN_TIMEOUT_S, interval_s=self.poll_interval_s
        )
        observed = datetime.now(UTC)
        tasks = [task_timing(t) for t in client.run_tries(dag_id, run_id)]
        state = self._state()
        if state is not None and state.orchbench_home:  # where the DAG's noop tasks write
            with_noop_moments(tasks, str(Path(state.orchbench_home) / WORKLOAD_DIR), run_id)
        return WorkloadResult(
            shape=shape,
            size=size,
            run_id=run_id,
            status=run["state"],
            triggered_at=triggered_at,
            finished_at=parse_time(run.get("end_date")) or observed,
            tasks=tasks,
            details={"dag_id": dag_id, "observed_finished_at": observed.isoformat()},
            accepted_at=accepted_at(run),
        )
