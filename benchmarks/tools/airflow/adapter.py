"""Airflow behind the ToolAdapter interface: the real scheduler, driven over REST.

``run_pipeline`` triggers the ``orchbench_ml`` DAG with the orchbench run id as the
Airflow ``dag_run_id`` (the tasks write their step records under it), the config path,
seed and faults as run conf, and the logical date (with that day as the data interval)
when one is given; waits, then assembles the same RunRecord as every other tool from the
step records, with the run's partition and Airflow's own per-task timings.
``backfill`` makes Airflow backfills (``POST /api/v2/backfills``) over the dates.

Local target: services are started when they are not running (and stopped again after
the run if this adapter started them; keep them with ``ORCHBENCH_AIRFLOW_KEEP_SERVICES=1``
or start them first with ``orchbench airflow up``). Cluster target: ``--url`` of an
Airflow API (user/password from ``ORCHBENCH_AIRFLOW_USER``/``ORCHBENCH_AIRFLOW_PASSWORD``);
the config then travels by value and the record is read from the cluster's object store
(``benchmarks.tools.airflow.cluster``, ``benchmarks.tools.cluster``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from benchmarks.environments import orchbench_home_set
from benchmarks.services.postgres import Database
from benchmarks.tools.airflow.backfill import Backfills
from benchmarks.tools.airflow.client import AirflowClient, parse_time
from benchmarks.tools.airflow.cluster import cluster_conf
from benchmarks.tools.airflow.dags import (
    ML_DAG_ID,
    RUN_TIMEOUT_S,
    SAFE_RUN_ID,
    accepted_at,
    task_timing,
)
from benchmarks.tools.airflow.disruption import Disruptions
from benchmarks.tools.airflow.logs import fetch_task_log, render_log, task_instance_of
from benchmarks.tools.airflow.runs import records_run_id, run_partition
from benchmarks.tools.airflow.services import (
    AirflowServices,
    Profile,
    ServiceError,
    ServiceSettings,
    ServiceState,
    signals_as_interrupts,
)
from benchmarks.tools.airflow.workload_runs import WorkloadRuns
from benchmarks.tools.base import (
    CapabilityMissing,
    ServiceInfo,
    TaskTiming,
    ToolAdapter,
)
from benchmarks.tools.cluster import cluster_config, collect_from_store, store_and_read_back
from shared_ml.config import Partition, PipelineConfig, load_config
from shared_ml.records import RunRecord, collect_run_record, write_run_record
from shared_ml.runner import new_run_id

log = logging.getLogger(__name__)


class AirflowAdapter(WorkloadRuns, Disruptions, Backfills, ToolAdapter):
    name = "airflow"
    execution_model = "process-per-task"
    execution_path = "scheduler + LocalExecutor (process per task)"
    database = "sqlite"
    packages = ("apache-airflow",)
    poll_interval_s = 0.5  # GET the dag run until terminal (client.wait_for_run)

    def __init__(
        self,
        target: Literal["local", "cluster"] = "local",
        url: str | None = None,
        profile: Profile = "defaults",
        settings: ServiceSettings | None = None,
        database: Database = "sqlite",
        home: Path | None = None,
    ) -> None:
        super().__init__(target=target, url=url, profile=profile)
        if target == "cluster" and not url:
            raise ValueError("--target cluster needs --url of the Airflow API server")
        if target == "cluster":  # infra/components/airflow.py: the chart's executor and DB
            self.execution_path = "scheduler + KubernetesExecutor (pod per task)"
            self.database = "postgres (the cluster's Airflow chart)"
        if settings is not None and database != "sqlite" and settings.database != database:
            raise ValueError(
                f"database {database!r} differs from the given settings' {settings.database!r}"
            )
        # "sqlite" (the default) leaves the choice to ORCHBENCH_AIRFLOW_DB, as --db does.
        self.settings = settings or ServiceSettings.from_env(
            profile=profile, database=None if database == "sqlite" else database, home=home
        )
        if target == "local":
            self.database = self.settings.database
        self.services = AirflowServices(self.settings)
        self._run_dags: dict[str, str] = {}  # dag_run_id -> dag_id, for task_timings
        # What the client's watchdog restarted after a crash; every later record says so.
        self.crash_restarts: list[str] = []

    # --- services -----------------------------------------------------------------------
    def _state(self) -> ServiceState | None:
        return self.services.state() if self.target == "local" else None

    def start_services(self) -> ServiceInfo | None:
        if self.target == "cluster":
            return None
        state = self.services.start()
        if state.profile != self.settings.profile:
            raise ServiceError(
                f"Airflow in {self.settings.home} is running with profile {state.profile!r}, "
                f"not {self.settings.profile!r}; stop it first (orchbench airflow down)"
            )
        return ServiceInfo(
            url=state.url,
            pids=self.services.pids(include_children=True),
            cold_start_s=state.cold_start_s,
            profile=self.settings.profile,
            details={
                "home": str(self.settings.home),
                "database": self.settings.database,
                "database_url": state.database,  # password redacted
                "migrate_s": state.migrate_s,
                "parallelism": self.settings.parallelism,
                "schedules": self.settings.schedules,
                "components": {n: c.pid for n, c in state.components.items()},
                "cold_start_definition": "airflow db migrate start -> /api/v2/monitor/health "
                "reports metadatabase, scheduler and dag_processor healthy",
            },
        )

    def stop_services(self) -> None:
        if self.target == "local":
            self.services.stop()

    def restart_services(self) -> None:
        """Stop the three components (SIGTERM, as an operator's restart would) and start
        them again on the same home, port and metadata DB while a run may be in flight."""
        if self.target != "local":
            raise CapabilityMissing("restart is driven only for local services")
        self.services.stop()
        self.services.start()

    def service_pids(self) -> list[int]:
        return self.services.pids(include_children=True) if self.target == "local" else []

    @contextlib.contextmanager
    def _running(self) -> Iterator[AirflowClient]:
        """A client for running services; start them for the duration if they are not up."""
        started_here = False
        # SIGTERM/SIGHUP become KeyboardInterrupt, so services started here are stopped.
        with signals_as_interrupts():
            if self.target == "local" and not self.services.is_running():
                self._revive()  # a crashed scheduler or dag-processor: only that one
            if self.target == "local" and not self.services.is_running():
                self.start_services()
                started_here = os.environ.get("ORCHBENCH_AIRFLOW_KEEP_SERVICES") != "1"
            try:
                with self._client() as client:
                    yield client
            finally:
                if started_here:
                    self.stop_services()

    def _client(self) -> AirflowClient:
        if self.target == "cluster":
            return self._remote_client()
        state = self._state()
        if state is None:
            raise ServiceError(
                f"Airflow is not running in {self.settings.home}: start it with `orchbench "
                "airflow up` (or point ORCHBENCH_AIRFLOW_HOME at the install that ran the run)"
            )
        return AirflowClient(state.url, airflow_home=self.settings.home, watchdog=self._revive)

    def _revive(self) -> None:
        for note in self.services.revive_crashed():
            log.warning(note)
            self.crash_restarts.append(note)

    def _remote_client(self) -> AirflowClient:
        """A client for the Airflow API at ``--url`` (a cluster's)."""
        password = os.environ.get("ORCHBENCH_AIRFLOW_PASSWORD")
        if not password:
            raise ServiceError(
                f"Airflow at {self.url}: set ORCHBENCH_AIRFLOW_PASSWORD (and "
                "ORCHBENCH_AIRFLOW_USER if not admin) to log in to its API"
            )
        return AirflowClient(
            self.url or "",
            username=os.environ.get("ORCHBENCH_AIRFLOW_USER", "admin"),
            password=password,
        )

    # --- the ML pipeline ----------------------------------------------------------------
    def _load_config(self, config_path: Path, seed: int | None) -> PipelineConfig:
        if self.target == "cluster":
            return cluster_config(config_path, seed)
        state = self._state()
        with orchbench_home_set(state.orchbench_home if state else None):
            return load_config(config_path, seed=seed)

    def _conf(
        self, config_path: Path, config: PipelineConfig, seed: int | None, faults: Any
    ) -> dict[str, Any]:
        """The run conf: on a cluster the config by value, locally its path (and seed)."""
        if self.target == "cluster":
            return cluster_conf(config, faults)
        conf: dict[str, Any] = {"config_path": str(Path(config_path).resolve())}
        if seed is not None:
            conf["seed"] = seed
        if faults:
            conf["faults"] = faults
        return conf

    def run_pipeline(
        self,
        config_path: Path,
        *,
        seed: int | None = None,
        run_id: str | None = None,
        faults: dict[str, dict[str, Any]] | None = None,
        logical_date: date | None = None,
    ) -> RunRecord:
        run_id = run_id or new_run_id("airflow")
        if not SAFE_RUN_ID.match(run_id):
            raise ValueError(f"run id {run_id!r}: use letters, digits, '.', '_' or '-' only")
        with self._running() as client:
            config = self._load_config(config_path, seed)
            client.wait_for_dag(ML_DAG_ID)
            triggered_at = datetime.now(UTC)
            dated: dict[str, Any] = {}
            if logical_date is not None:
                # The day as the data interval, as every other runner dates a run; left to
                # Airflow, a manual run's interval is the timetable's last one before it.
                day = Partition.daily(logical_date)
                self._check_logical_date_free(client, day.interval_start)
                dated = {
                    "logical_date": day.interval_start,
                    "data_interval": (day.interval_start, day.interval_end),
                }
            conf = self._conf(config_path, config, seed, faults)
            client.trigger(ML_DAG_ID, run_id=run_id, conf=conf, **dated)
            self._run_dags[run_id] = ML_DAG_ID
            run = client.wait_for_run(
                ML_DAG_ID, run_id, timeout_s=RUN_TIMEOUT_S, interval_s=self.poll_interval_s
            )
            return self._record(client, config, run, triggered_at)

    def run_pipelines_at_once(
        self, runs: list[tuple[Path, date]]
    ) -> list[RunRecord | BaseException]:
        """Trigger every run first, then wait for each: Airflow runs them side by side
        (its scheduler, not threads of ours, decides how), and the REST calls stay on
        this thread."""
        results: list[RunRecord | BaseException] = []
        with self._running() as client:
            client.wait_for_dag(ML_DAG_ID)
            started: list[tuple[str, PipelineConfig, datetime] | BaseException] = []
            for config_path, day in runs:
                try:
                    run_id = new_run_id("airflow")
                    config = self._load_config(config_path, None)
                    partition = Partition.daily(day)
                    self._check_logical_date_free(client, partition.interval_start)
                    triggered_at = datetime.now(UTC)
                    client.trigger(
                        ML_DAG_ID,
                        run_id=run_id,
                        conf=self._conf(config_path, config, None, None),
                        logical_date=partition.interval_start,
                        data_interval=(partition.interval_start, partition.interval_end),
                    )
                    self._run_dags[run_id] = ML_DAG_ID
                    started.append((run_id, config, triggered_at))
                except Exception as err:
                    started.append(err)
            for entry in started:
                if isinstance(entry, BaseException):
                    results.append(entry)
                    continue
                run_id, config, triggered_at = entry
                try:
                    run = client.wait_for_run(ML_DAG_ID, run_id, timeout_s=RUN_TIMEOUT_S)
                    results.append(self._record(client, config, run, triggered_at))
                except Exception as err:
                    results.append(err)
        return results

    @staticmethod
    def _check_logical_date_free(client: AirflowClient, logical: datetime) -> None:
        """Airflow keeps one run per logical date (a unique key of its runs table): say
        so, and what to do, before the trigger fails with a bare 409."""
        stamp = logical.isoformat()
        taken = client.dag_runs(ML_DAG_ID, logical_date_gte=stamp, logical_date_lte=stamp)
        if taken:
            run = taken[0]
            raise ValueError(
                f"Airflow keeps one run per logical date, and run {run['dag_run_id']!r} "
                f"({run['state']}) of {ML_DAG_ID} already has {stamp}: read its record, or "
                f"run that date again with `orchbench backfill --tool airflow --start "
                f"{logical.date()} --end {logical.date()}`"
            )

    def _record(
        self,
        client: AirflowClient,
        config: PipelineConfig,
        run: dict[str, Any],
        triggered_at: datetime | None,
    ) -> RunRecord:
        dag_run_id = run["dag_run_id"]
        tries = client.run_tries(run["dag_id"], dag_run_id)
        started, ended = parse_time(run.get("start_date")), parse_time(run.get("end_date"))
        queued = parse_time(run.get("queued_at"))
        details: dict[str, Any] = {
            "dag_id": run["dag_id"],
            "dag_run_id": dag_run_id,
            "run_type": run.get("run_type"),
            "logical_date": run.get("logical_date"),
            "data_interval": [run.get("data_interval_start"), run.get("data_interval_end")],
            "run_after": run.get("run_after"),
            "state": run["state"],
            "url": client.url,
            "profile": self._state().profile if self._state() else None,
            "triggered_at": triggered_at.isoformat() if triggered_at else None,
            "queued_at": queued.isoformat() if queued else None,
            "run_started_at": started.isoformat() if started else None,
            "run_ended_at": ended.isoformat() if ended else None,
            "trigger_to_end_s": (ended - triggered_at).total_seconds()
            if ended and triggered_at
            else None,
            "tasks": [t.as_dict() for t in tries],
        }
        if self.crash_restarts:
            details["components_restarted_after_crash"] = list(self.crash_restarts)
        with contextlib.suppress(Exception):
            details["airflow_version"] = client.request("GET", "/version")["version"]
        collect = collect_from_store if self.target == "cluster" else collect_run_record
        record = collect(
            runs_root=config.storage.runs_root,
            run_id=records_run_id(dag_run_id),
            tool="airflow",
            pipeline=run["dag_id"],
            config_fingerprint=config.ml_fingerprint(),
            seed=config.seed,
            status="success" if run["state"] == "success" else "failed",
            started_at=started,
            ended_at=ended,
            partition=run_partition(run),
            tool_details=details,
        )
        record.accepted_at = accepted_at(run)
        if "airflow_version" in details:
            record.versions["apache-airflow"] = details["airflow_version"]
        if self.target == "cluster":
            return store_and_read_back(config.storage.runs_root, record)
        write_run_record(config.storage.runs_root, record)
        return record

    def run_record(self, dag_run_id: str, config_path: Path) -> RunRecord:
        """The run record of any finished run of the ML DAG (scheduled, asset-triggered,
        backfilled...), read as ``run_pipeline`` reads its own."""
        with self._running() as client:
            config = self._load_config(config_path, None)
            run = client.wait_for_run(ML_DAG_ID, dag_run_id, timeout_s=RUN_TIMEOUT_S)
            return self._record(client, config, run, None)

    def resume_pipeline(self, failed: RunRecord, config_path: Path) -> RunRecord:
        """Clear the failed tasks of the failed run (and their downstream) and wait; the
        tasks that succeeded are not run again."""
        dag_run_id = failed.tool_details.get("dag_run_id", failed.run_id)
        with self._running() as client:
            config = self._load_config(config_path, failed.seed)
            cleared = client.clear_failed_tasks(ML_DAG_ID, dag_run_id)
            if not cleared:
                raise ServiceError(f"run {dag_run_id}: no failed task instances to clear")
            resumed_at = datetime.now(UTC)
            run = client.wait_for_run(ML_DAG_ID, dag_run_id, timeout_s=RUN_TIMEOUT_S)
            record = self._record(client, config, run, resumed_at)
            record.tool_details["cleared_tasks"] = sorted({t["task_id"] for t in cleared})
            return record

    def step_log(self, config_path: Path, record: RunRecord, step: str, attempt: int) -> str:
        """Airflow's own log of try ``attempt`` of the task instance of ``step`` (task
        ``train`` at the map index labelled ``forest`` for ``train[forest]``), read through
        the REST API of the running services (``orchbench airflow up``) or ``--url``."""
        dag_id = record.tool_details.get("dag_id", ML_DAG_ID)
        dag_run_id = record.tool_details.get("dag_run_id", record.run_id)
        with self._remote_client() if self.url else self._client() as client:
            task_id, map_index = task_instance_of(client, dag_id, dag_run_id, step)
            return render_log(
                fetch_task_log(client, dag_id, dag_run_id, task_id, attempt, map_index)
            )

    def task_timings(self, run_id: str) -> list[TaskTiming]:
        dag_id = self._run_dags.get(run_id, ML_DAG_ID)
        with self._client() as client:
            return [task_timing(t) for t in client.run_tries(dag_id, run_id)]
