"""The no-op scaling workloads on the adapter's path (a flow run of the workload
deployment, or the workload flow in a subprocess), as a part of the adapter."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.environments import tool_bin, tool_env
from benchmarks.tools.base import WorkloadResult, with_noop_moments
from benchmarks.tools.prefect.client import PrefectClient, parse_time
from benchmarks.tools.prefect.paths import (
    RUN_TIMEOUT_S,
    WORKLOAD_DEPLOYMENT_NAME,
    WORKLOAD_FLOW_NAME,
)
from benchmarks.tools.prefect.task_runs import flow_run_accepted_at, to_task_timing
from shared_ml.runner import new_run_id


class WorkloadRuns:
    """Uses the adapter's ``target``, ``mode``, ``api_url``, ``_deployment_id``, ``_run_subprocess``,
    ``_flow_runs``, ``execution_path`` and ``poll_interval_s``."""

    def run_workload(self, shape: str, size: int) -> WorkloadResult:
        """A no-op chain or fan-out, on this adapter's path: a flow run of the workload
        deployment picked up by the worker, or the workload flow in a subprocess."""
        run_id = new_run_id(f"prefect-{shape}{size}")
        api_url = self.api_url()
        # The no-op tasks write their times where this machine reads them; a cluster's pods
        # cannot reach this machine's disk, and there the task runs' times come from the API.
        runs_root = (
            None
            if self.target == "cluster"
            else str(Path(tool_env()["ORCHBENCH_HOME"]) / "var" / "runs")
        )
        parameters = {"shape": shape, "size": size, "run_id": run_id, "runs_root": runs_root}
        triggered = datetime.now(UTC)
        details: dict[str, Any] = {"mode": self.mode, "execution_path": self.execution_path}
        if self.mode == "deployment":
            with PrefectClient(api_url) as client:
                deployment_id = self._deployment_id(
                    client, WORKLOAD_FLOW_NAME, WORKLOAD_DEPLOYMENT_NAME
                )
                flow_run_id = client.create_flow_run_from_deployment(
                    deployment_id, parameters=parameters, name=run_id, tags=["orchbench"]
                )["id"]
            details["deployment_id"] = deployment_id
        else:
            command = [str(tool_bin("prefect", "python")), "-m", "pipelines.prefect.run"]
            command += ["workload", "--shape", shape, "--size", str(size), "--run-id", run_id]
            command += ["--runs-root", runs_root]
            summary = self._run_subprocess(command, api_url)
            flow_run_id = summary["flow_run_id"]
            details["process_seconds"] = summary["process_ended"] - summary["process_started"]
        self._flow_runs[run_id] = flow_run_id
        expected = size if shape == "chain" else size + 2
        with PrefectClient(api_url) as client:
            flow_run = client.wait_for_flow_run(
                flow_run_id, timeout_s=RUN_TIMEOUT_S, poll_s=self.poll_interval_s
            )
            task_runs = client.wait_for_task_runs(flow_run_id, expected=expected)
        tasks = [to_task_timing(t) for t in task_runs]
        if runs_root is not None:
            with_noop_moments(tasks, runs_root, run_id)
        return WorkloadResult(
            shape=shape,  # type: ignore[arg-type]
            size=size,
            run_id=run_id,
            status=flow_run["state"]["type"].lower(),
            triggered_at=triggered,
            finished_at=parse_time(flow_run.get("end_time")) or datetime.now(UTC),
            tasks=tasks,
            details={"flow_run_id": flow_run_id, **details},
            accepted_at=flow_run_accepted_at(flow_run),
        )
