"""Killing and restarting Prefect's local components while a run is in flight (the
benchmark's disruption scenarios), as a part of the adapter."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from benchmarks.tools.base import CapabilityMissing
from benchmarks.tools.disruption import sigkill
from benchmarks.tools.prefect.client import PrefectClient, parse_time
from benchmarks.tools.prefect.paths import RUN_TIMEOUT_S, PrefectRunError
from shared_ml.records import RunRecord


class Disruptions:
    """Uses the adapter's ``target``, ``mode``, ``services``, ``api_url``,
    ``pipeline_config`` and ``_record``."""

    server_component = "server"
    work_component = "worker"  # the process worker; its flow-run processes go with it

    def restart_component(self, component: str) -> None:
        if self.target != "local":
            raise CapabilityMissing("components are restarted only for local services")
        if component == "server":
            self.services.restart_server()
        elif component == "worker":
            self.services.restart_worker()
        else:
            raise CapabilityMissing(f"prefect has no component {component!r}: server or worker")

    def kill_worker(self, step_pid: int) -> str:
        """SIGKILL the process worker alone, not the flow-run process it started (that
        keeps running, orphaned, as after an OOM kill of the worker on a host), then start
        a new worker as a process supervisor would. The worker that died sent no final
        state, and Prefect has no heartbeat check for it by default: the flow run goes on
        and reports its own end."""
        if self.target != "local" or self.mode != "deployment":
            raise CapabilityMissing("a worker is killed only on the local deployment path")
        state = self.services.read_state()
        worker = next((e for e in state.processes if e.name == "worker"), None) if state else None
        process = worker.process() if worker else None
        if process is None:
            raise PrefectRunError(f"no live Prefect worker recorded in {self.services.home}")
        runs_under_it = step_pid in {p.pid for p in process.children(recursive=True)}
        killed = sigkill(process)
        self.services.restart_worker(stop=False)
        where = "its descendant" if runs_under_it else "not its descendant"
        return (
            f"SIGKILLed the Prefect worker {killed} (the step's process {step_pid} is "
            f"{where}); a new worker was started"
        )

    def read_run_record(self, run_id: str, config_path: Path) -> RunRecord:
        """The flow run named ``run_id`` (the adapter names each after its run id), waited
        for until terminal, read as ``run_pipeline`` reads its own."""
        api_url = self.api_url()
        with PrefectClient(api_url) as client:
            runs = client.read_flow_runs(names=[run_id])
            if not runs:
                raise PrefectRunError(f"no flow run named {run_id!r} on {api_url}")
            flow_run = client.wait_for_flow_run(runs[0]["id"], timeout_s=RUN_TIMEOUT_S)
        triggered = parse_time(flow_run.get("created")) or datetime.now(UTC)
        config = self.pipeline_config(config_path)
        return self._record(config, run_id, flow_run["id"], triggered, api_url)
