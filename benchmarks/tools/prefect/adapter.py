"""Prefect 3 behind the orchbench adapter interface.

Runs in the core environment (no Prefect installed). Two execution paths, never mixed in
one adapter (``execution_path`` says which one a figure was measured on):

- ``deployment`` (default; Prefect's production path): a flow run of the
  ``orchbench-ml/orchbench-ml`` deployment (or, for the scaling workloads, of
  ``orchbench-workload/orchbench-workload``) is created through the REST API; the process
  worker picks it up and starts the flow-run process, whose tasks run in threads;
- ``in-process``: ``python -m pipelines.prefect.run`` in ``.venvs/prefect``, the flow
  executing in that subprocess and reporting to the server; no worker, no deployment.
  Reachable with ``orchbench run --tool prefect --path in-process``.

Either way the orchbench run id is the flow run's ``run_id`` parameter (and its name), the
steps write their records under it, and the run record is assembled from those records
(``collect_run_record``) with Prefect's own task-run timings in ``tool_details``.

``--target cluster``: a Job of the cluster's Kubernetes worker only (``cluster.py``).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal

from benchmarks.environments import tool_bin
from benchmarks.services.postgres import Database
from benchmarks.tools.base import (
    ServiceInfo,
    TaskTiming,
    ToolAdapter,
)
from benchmarks.tools.prefect.backfill import Backfills
from benchmarks.tools.prefect.client import PrefectClient, parse_time
from benchmarks.tools.prefect.cluster import ClusterPath
from benchmarks.tools.prefect.disruption import Disruptions
from benchmarks.tools.prefect.logs import log_server, step_attempt_log
from benchmarks.tools.prefect.paths import (
    EXECUTION_PATHS,
    MODES,
    RUN_TIMEOUT_S,
    Mode,
    PrefectRunError,
)
from benchmarks.tools.prefect.services import PrefectServices, ServicesState, prefect_env
from benchmarks.tools.prefect.task_runs import (
    flow_run_accepted_at,
    flow_run_details,
    flow_run_partition,
    to_task_timing,
)
from benchmarks.tools.prefect.workload_runs import WorkloadRuns
from shared_ml.config import PipelineConfig
from shared_ml.records import RunRecord, write_run_record
from shared_ml.runner import new_run_id
from shared_ml.spec import PIPELINE


class PrefectAdapter(ClusterPath, WorkloadRuns, Disruptions, Backfills, ToolAdapter):
    name = "prefect"
    # Either path runs the tasks as threads of one flow-run process.
    execution_model = "in-process"
    packages = ("prefect",)
    database = "sqlite"
    poll_interval_s = 0.25  # GET the flow run until terminal (client.wait_for_flow_run)

    def __init__(
        self,
        target: Literal["local", "cluster"] = "local",
        url: str | None = None,
        profile: Literal["defaults", "tuned"] = "defaults",
        *,
        home: Path | str | None = None,
        mode: Mode = "deployment",
        port: int | None = None,
        database: Database = "sqlite",
    ) -> None:
        super().__init__(target=target, url=url, profile=profile)
        if mode not in MODES:
            raise ValueError(f"Prefect path {mode!r}: expected one of {', '.join(MODES)}")
        if target == "cluster" and not url:
            raise ValueError("--target cluster needs --url, the Prefect API URL of the cluster")
        if target == "cluster" and mode != "deployment":
            raise ValueError(
                f"Prefect path {mode!r} with --target cluster: a cluster runs flows only "
                "through its deployment and worker"
            )
        self.mode: Mode = mode
        self.execution_path = EXECUTION_PATHS["cluster" if target == "cluster" else mode]
        if target == "cluster":
            self.database = "postgres (the cluster's prefect-server chart)"
        self.services = PrefectServices(home)
        self.port = port
        # The local services' database: "postgres" starts a PostgreSQL with them.
        self.services_database: Database = database
        if target == "local":
            self.database = database
        self.started_services = False
        self._flow_runs: dict[str, str] = {}  # orchbench run id -> latest flow run id

    # --- services -----------------------------------------------------------------
    def start_services(self) -> ServiceInfo | None:
        if self.target == "cluster":
            return None  # the cluster's server and worker are not ours to start
        state = self.services.up(
            port=self.port, profile=self.profile, database=self.services_database
        )
        self.started_services = True
        return self._service_info(state)

    def _service_info(self, state: ServicesState) -> ServiceInfo:
        return ServiceInfo(
            url=state.url,
            pids=self.services.pids(state),
            cold_start_s=state.cold_start_s,
            profile=state.profile,  # type: ignore[arg-type]
            details={
                "home": state.home,
                "worker_ready_s": state.worker_ready_s,
                "database": state.database_kind,
                "database_url": state.database,  # password redacted
                "processes": {e.name: e.pid for e in state.processes},
            },
        )

    def restart_services(self) -> None:
        """Restart the Prefect server (same port, same database) while runs may be in
        flight; the worker and any flow-run process keep running and reconnect."""
        self.services.restart_server()

    def stop_services(self) -> None:
        if self.target == "local":
            self.services.down()

    def services_left_running(self) -> str | None:
        if not self.started_services:
            return None
        return (
            f"the Prefect server and worker this command started keep running (home "
            f"{self.services.home}), for the next command to reuse: stop them with "
            f"`orchbench prefect down --home {self.services.home}`"
        )

    def service_pids(self) -> list[int]:
        return self.services.pids() if self.target == "local" else []

    def api_url(self) -> str:
        """The API to use: ``--url``, else the running local services, else start them."""
        if self.url:
            return (
                self.url.rstrip("/")
                if self.url.rstrip("/").endswith("/api")
                else (self.url.rstrip("/") + "/api")
            )
        state = self.services.read_state()
        if state is None or not self.services.healthy(state):
            if state is not None:
                self.services.down()  # stale: a crashed server, a dead worker
            state = self.services.up(
                port=self.port, profile=self.profile, database=self.services_database
            )
            self.started_services = True
        return state.api_url

    def client(self) -> PrefectClient:
        return PrefectClient(self.api_url())

    def _env(self, api_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = prefect_env(self.services.home, api_url, self.profile)
        env.update(extra or {})
        return env

    # --- the ML pipeline ----------------------------------------------------------
    def run_pipeline(
        self,
        config_path: Path,
        *,
        seed: int | None = None,
        run_id: str | None = None,
        faults: dict[str, dict[str, Any]] | None = None,
        logical_date: date | None = None,
    ) -> RunRecord:
        run_id = run_id or new_run_id("prefect")
        config = self.pipeline_config(config_path, seed)
        api_url = self.api_url()
        triggered = datetime.now(UTC)
        if self.mode == "deployment":
            flow_run_id = self._run_deployment(
                config_path, seed, run_id, faults, api_url, logical_date=logical_date
            )
        else:
            flow_run_id = self._run_in_process(
                config_path, seed, run_id, faults, api_url, logical_date
            )
        return self._record(config, run_id, flow_run_id, triggered, api_url, logical_date)

    def _run_in_process(
        self,
        config_path: Path,
        seed: int | None,
        run_id: str,
        faults: dict[str, dict[str, Any]] | None,
        api_url: str,
        logical_date: date | None = None,
    ) -> str:
        command = [str(tool_bin("prefect", "python")), "-m", "pipelines.prefect.run", "pipeline"]
        command += ["--config", str(Path(config_path).resolve()), "--run-id", run_id]
        if seed is not None:
            command += ["--seed", str(seed)]
        if faults:
            command += ["--faults", json.dumps(faults)]
        if logical_date:
            command += ["--date", logical_date.isoformat()]
        return self._run_subprocess(command, api_url)["flow_run_id"]

    def _run_subprocess(self, command: list[str], api_url: str) -> dict[str, Any]:
        env = self._env(api_url)
        try:
            done = subprocess.run(
                command,
                env=env,
                cwd=env["ORCHBENCH_HOME"],
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise PrefectRunError(f"{' '.join(command[1:4])} took over {RUN_TIMEOUT_S} s") from None
        lines = done.stdout.strip().splitlines()
        if done.returncode not in (0, 1) or not lines or not lines[-1].startswith("{"):
            raise PrefectRunError(
                f"prefect flow process exited {done.returncode}: {done.stderr.strip()[-2000:]}"
            )
        return json.loads(lines[-1])

    def _run_deployment(
        self,
        config_path: Path,
        seed: int | None,
        run_id: str,
        faults: dict[str, dict[str, Any]] | None,
        api_url: str,
        *,
        logical_date: date | None = None,
        idempotency_key: str | None = None,
        backfill: bool = False,
    ) -> str:
        """Create a flow run of the deployment and wait for it. A dated run is scheduled at
        its date's midnight (UTC), as the scheduler would have scheduled it; one in the past
        is due at once."""
        parameters: dict[str, Any] = {
            "config": self._flow_config(config_path, seed),
            "run_id": run_id,
        }
        if faults:
            parameters["faults"] = faults
        if logical_date:
            parameters["logical_date"] = logical_date.isoformat()
        scheduled = (
            datetime.combine(logical_date, time(0), tzinfo=UTC)
            if logical_date and logical_date < datetime.now(UTC).date()
            else None
        )
        with PrefectClient(api_url) as client:
            flow_run = client.create_flow_run_from_deployment(
                self._deployment_id(client),
                parameters=parameters,
                name=run_id,
                idempotency_key=idempotency_key,
                scheduled_time=scheduled,
                tags=["orchbench"] + (["backfill"] if backfill else []),
            )
            client.wait_for_flow_run(
                flow_run["id"], timeout_s=RUN_TIMEOUT_S, poll_s=self.poll_interval_s
            )
        return flow_run["id"]

    def _record(
        self,
        config: PipelineConfig,
        run_id: str,
        flow_run_id: str,
        triggered: datetime,
        api_url: str,
        logical_date: date | None = None,
        extra: dict[str, Any] | None = None,
    ) -> RunRecord:
        self._flow_runs[run_id] = flow_run_id
        with PrefectClient(api_url) as client:
            flow_run = client.wait_for_flow_run(
                flow_run_id, timeout_s=RUN_TIMEOUT_S, poll_s=self.poll_interval_s
            )
            # A crashed run may never report its last task runs: don't wait for them.
            crashed = flow_run["state"]["type"] != "COMPLETED"
            task_runs = (
                client.read_task_runs(flow_run_id)
                if crashed
                else client.wait_for_task_runs(
                    flow_run_id, expected=len(PIPELINE.expand(config.candidate_names))
                )
            )
            # Scheduled -> Pending is the worker's pick-up; Pending -> Running is the flow-run
            # process starting (deployment runs only; in-process runs start Running).
            states = [
                {"type": st["type"], "name": st["name"], "timestamp": st["timestamp"]}
                for st in client.read_flow_run_states(flow_run_id)
            ]
        state = flow_run["state"]
        ended = parse_time(flow_run.get("end_time")) or datetime.now(UTC)
        partition = flow_run_partition(flow_run, logical_date)
        details = {
            "mode": self.mode,
            "execution_path": self.execution_path,
            "profile": self.profile,
            "api_url": api_url,
            **flow_run_details(flow_run, task_runs, states),
            "logical_date": partition.logical_date.isoformat(),
            "trigger_to_terminal_s": round((ended - triggered).total_seconds(), 3),
            **(extra or {}),
        }
        record = self._collect_record(
            config.storage.runs_root,
            run_id,
            tool=self.name,
            pipeline=PIPELINE.name,
            config_fingerprint=config.ml_fingerprint(),
            seed=config.seed,
            status="success" if state["type"] == "COMPLETED" else "failed",
            started_at=triggered,
            ended_at=ended,
            partition=partition,
            tool_packages=(),
            tool_details=details,
        )
        record.accepted_at = flow_run_accepted_at(flow_run)
        with contextlib.suppress(Exception), PrefectClient(api_url) as client:
            record.versions["prefect-server"] = client.server_version()
        return self._keep_record(config.storage.runs_root, record)

    def resume_pipeline(self, failed: RunRecord, config_path: Path) -> RunRecord:
        """Run again under the same orchbench run id and date, without faults: the tasks
        that completed come from Prefect's result cache, the rest re-execute."""
        record = self.run_pipeline(
            config_path, seed=failed.seed, run_id=failed.run_id, logical_date=failed.logical_date
        )
        record.tool_details["resumed_from_flow_run"] = failed.tool_details.get("flow_run_id")
        record.tool_details["executed_steps"] = sorted(
            t["name"] for t in record.tool_details["task_runs"] if t["state"] == "Completed"
        )
        config = self.pipeline_config(config_path, failed.seed)
        write_run_record(config.storage.runs_root, record)
        return record

    def step_log(self, config_path: Path, record: RunRecord, step: str, attempt: int) -> str:
        """The attempt's lines from Prefect's logs API (``logs.py``), on the server given
        by --url, else the run record's, else the running local services'."""
        state = self.services.read_state() if self.target == "local" else None
        explicit = self.api_url() if self.url else None
        api = log_server(explicit, record, state.api_url if state else None)
        with PrefectClient(api) as client:
            return step_attempt_log(client, record, step, attempt)

    # --- timings -----------------------------------------------------------------
    def task_timings(self, run_id: str) -> list[TaskTiming]:
        """Task-run timings of the latest flow run for an orchbench run id (or a flow run id)."""
        with self.client() as client:
            flow_run_id = self._flow_runs.get(run_id)
            if flow_run_id is None:
                runs = client.read_flow_runs(names=[run_id], limit=1)
                flow_run_id = runs[0]["id"] if runs else run_id
            return [to_task_timing(t) for t in client.read_task_runs(flow_run_id)]
