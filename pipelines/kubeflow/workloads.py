"""The no-op scaling workloads as KFP pipelines: a chain of N tasks or a fan-out of width W.

The graph comes from ``shared_ml.workloads.workload_graph``, so every tool runs the same shape.
Each task calls ``shared_ml.workloads.noop``, which writes its own start and end times under
``<runs_root>/<run_id>/tasks/``: the local runner has no API that reports task timings.
Caching is off: a scaling run must execute every task.
"""

import functools

from kfp import dsl

from pipelines.kubeflow.tasks import SHARED_ML_IMAGE
from shared_ml.workloads import workload_graph


@dsl.component(base_image=SHARED_ML_IMAGE, install_kfp_package=False)
def noop_task(task: str, run_id: str, runs_root: str):
    """Do nothing, but record when."""
    from shared_ml.workloads import noop

    noop(task, run_id, runs_root)


@functools.cache
def workload_pipeline(shape: str, size: int) -> dsl.base_component.BaseComponent:
    """A pipeline with one ``noop_task`` per node of ``workload_graph(shape, size)``."""
    graph = workload_graph(shape, size)  # raises ValueError on a bad shape or size

    @dsl.pipeline(name=f"orchbench-{shape}-{size}")
    def workload(run_id: str, runs_root: str):
        tasks: dict[str, dsl.PipelineTask] = {}
        for name, upstream in graph.items():  # insertion order is a topological order
            task = noop_task(task=name, run_id=run_id, runs_root=runs_root)
            task.set_caching_options(enable_caching=False)
            for parent in upstream:
                task.after(tasks[parent])
            tasks[name] = task

    return workload
