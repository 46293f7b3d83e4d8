"""Killing and restarting Airflow's local components while a run is in flight (the
benchmark's disruption scenarios), as a part of the adapter."""

from __future__ import annotations

from pathlib import Path

import psutil

from benchmarks.tools.airflow.services import ServiceError
from benchmarks.tools.base import CapabilityMissing
from benchmarks.tools.disruption import ancestor_of, sigkill
from shared_ml.records import RunRecord


class Disruptions:
    """Uses the adapter's ``target``, ``services``, ``settings`` and ``run_record``."""

    server_component = "api-server"
    work_component = "scheduler"  # with its LocalExecutor workers and task processes

    def restart_component(self, component: str) -> None:
        if self.target != "local":
            raise CapabilityMissing("components are restarted only for local services")
        self.services.restart_component(component)

    def kill_worker(self, step_pid: int) -> str:
        """SIGKILL the LocalExecutor worker process supervising the running task: the
        task process's parent, which runs the Task SDK supervisor (heartbeats, state
        updates to the API) and was forked by the scheduler. The scheduler's executor
        reaps dead workers and forks new ones itself, so nothing is restarted here; the
        orphaned task process is left to what follows."""
        if self.target != "local":
            raise CapabilityMissing("a worker is killed only in local services")
        scheduler = self.services.running_components().get("scheduler")
        if scheduler is None:
            raise ServiceError(f"Airflow's scheduler is not running in {self.settings.home}")
        below_scheduler = {p.pid for p in psutil.Process(scheduler.pid).children(recursive=True)}
        worker = ancestor_of(
            step_pid,
            lambda p: p.pid in below_scheduler,
            "LocalExecutor worker (a descendant of the scheduler)",
        )
        return (
            f"SIGKILLed the LocalExecutor worker supervising the task, {sigkill(worker)}, a "
            f"child of the scheduler (pid {scheduler.pid}); the executor replaces dead "
            "workers itself"
        )

    def read_run_record(self, run_id: str, config_path: Path) -> RunRecord:
        return self.run_record(run_id, config_path)
