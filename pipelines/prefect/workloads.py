"""No-op scaling workloads (a chain of N tasks, or a fan-out of width W) as a Prefect flow.

Built from ``shared_ml.workloads.workload_graph``: every task calls ``noop``; a task is
submitted with ``wait_for`` its upstreams, so fan-out leaves run concurrently on the
thread-pool task runner. No caching, no result persistence: only orchestration is measured.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from shared_ml.concurrency import task_concurrency
from shared_ml.workloads import noop, workload_graph


@task(name="noop", cache_policy=NO_CACHE, persist_result=False, task_run_name="{name}")
def noop_task(name: str, run_id: str, runs_root: str | None) -> dict[str, float]:
    return noop(name, run_id, runs_root)


# The same task concurrency as the ML flow and every other tool (shared_ml.concurrency).
@flow(name="orchbench-workload", task_runner=ThreadPoolTaskRunner(max_workers=task_concurrency()))
def workload(shape: str, size: int, run_id: str, runs_root: str | None = None) -> dict[str, Any]:
    graph = workload_graph(shape, size)  # type: ignore[arg-type]
    futures: dict[str, Any] = {}
    for name, upstream in graph.items():  # the graph lists every task after its upstreams
        futures[name] = noop_task.submit(
            name, run_id, runs_root, wait_for=[futures[up] for up in upstream]
        )
    wait(list(futures.values()))
    failed = [name for name, f in futures.items() if not f.state.is_completed()]
    if failed:
        raise RuntimeError(f"workload tasks failed: {failed}")
    return {"tasks": len(futures)}
