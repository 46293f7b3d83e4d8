"""The no-op scaling workloads as Airflow DAGs ``orchbench_{chain,fanout}_{1,10,50}``.

The graphs are built from ``shared_ml.workloads.workload_graph``.

Each task calls ``shared_ml.workloads.noop``, so a run measures Airflow's own overhead
(scheduling, process start, state transitions) and nothing else. Triggered manually
(REST) by the benchmark harness; no schedule.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, get_current_context, task

from shared_ml.config import orchbench_home
from shared_ml.workloads import WORKLOAD_DIR, noop, workload_graph

SIZES = (1, 10, 50)
SHAPES = ("chain", "fanout")


def workload_dag_id(shape: str, size: int) -> str:
    return f"orchbench_{shape}_{size}"


@task(retries=1, retry_delay=timedelta(seconds=1))
def noop_task() -> dict[str, float]:
    context = get_current_context()
    # The times also go to a file, for the work moments (the adapter reads them there).
    runs_root = str(orchbench_home() / WORKLOAD_DIR)
    return noop(context["ti"].task_id, context["dag_run"].run_id, runs_root)


def build(shape: str, size: int) -> DAG:
    graph = workload_graph(shape, size)  # task -> upstream tasks
    with DAG(
        dag_id=workload_dag_id(shape, size),
        description=f"No-op {shape} workload of size {size} (scaling benchmark).",
        schedule=None,
        catchup=False,
        # Several runs at once for the throughput scenario; the task slots ([core]
        # parallelism, the same number every tool gets) bound how many tasks run.
        max_active_runs=16,
        tags=["orchbench", "workload"],
        default_args={"owner": "orchbench", "retries": 1},
        doc_md=__doc__,
    ) as dag:
        tasks = {name: noop_task.override(task_id=name)() for name in graph}
        for name, upstream in graph.items():
            for parent in upstream:
                tasks[parent] >> tasks[name]
    return dag


for _shape in SHAPES:
    for _size in SIZES:
        globals()[workload_dag_id(_shape, _size)] = build(_shape, _size)
