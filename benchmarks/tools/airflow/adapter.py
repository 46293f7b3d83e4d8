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
step records then live in the cluster's store, so the record carries the API's view only.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import psutil

from benchmarks.environments import orchbench_home_set
from benchmarks.services.postgres import Database
from benchmarks.tools.airflow.client import AirflowClient, TaskTry, parse_time
from benchmarks.tools.airflow.logs import fetch_task_log, render_log, task_instance_of
from benchmarks.tools.airflow.runs import contiguous_ranges, records_run_id, run_partition
from benchmarks.tools.airflow.services import (
    AirflowServices,
    Profile,
    ServiceError,
    ServiceSettings,
    ServiceState,
    signals_as_interrupts,
)
from benchmarks.tools.base import (
    BackfillNotSupported,
    CapabilityMissing,
    ServiceInfo,
    TaskTiming,
    ToolAdapter,
    WorkloadResult,
    WorkloadShape,
    with_noop_moments,
)
from benchmarks.tools.disruption import ancestor_of, sigkill
from shared_ml.config import Partition, PipelineConfig, load_config
from shared_ml.records import RunRecord, collect_run_record, write_run_record
from shared_ml.runner import new_run_id
from shared_ml.workloads import WORKLOAD_DIR

ML_DAG_ID = "orchbench_ml"
WORKLOAD_SIZES = (1, 10, 50)
RUN_TIMEOUT_S = float(os.environ.get("ORCHBENCH_AIRFLOW_RUN_TIMEOUT", "1800"))
SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def workload_dag_id(shape: str, size: int) -> str:
    return f"orchbench_{shape}_{size}"


def _timing(t: TaskTry) -> TaskTiming:
    """A task try with the moments Airflow records (docs/benchmarks.md): dispatched =
    ``queued_when`` (the scheduler queued it to the executor), persisted = ``end_date``
    (the task's terminal state reached the metadata DB)."""
    return TaskTiming(
        task=t.key,
        try_number=t.try_number,
        state=t.state or "none",
        queued_at=t.queued_at,
        started_at=t.started_at,
        ended_at=t.ended_at,
        dispatched_at=t.queued_at,
        persisted_at=t.ended_at,
    )


def accepted_at(run: dict[str, Any]) -> datetime | None:
    """When Airflow accepted the run: its ``queued_at`` (the trigger created it queued),
    else ``run_after``, as the API returns them."""
    return parse_time(run.get("queued_at")) or parse_time(run.get("run_after"))


class AirflowAdapter(ToolAdapter):
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

    # --- disruption (benchmarks/harness/scenarios_disruption.py) --------------------
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

    def service_pids(self) -> list[int]:
        return self.services.pids(include_children=True) if self.target == "local" else []

    @contextlib.contextmanager
    def _running(self) -> Iterator[AirflowClient]:
        """A client for running services; start them for the duration if they are not up."""
        started_here = False
        # SIGTERM/SIGHUP become KeyboardInterrupt, so services started here are stopped.
        with signals_as_interrupts():
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
        return AirflowClient(state.url, airflow_home=self.settings.home)

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
        state = self._state()
        with orchbench_home_set(state.orchbench_home if state else None):
            return load_config(config_path, seed=seed)

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
        conf: dict[str, Any] = {"config_path": str(Path(config_path).resolve())}
        if seed is not None:
            conf["seed"] = seed
        if faults:
            conf["faults"] = faults
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
                        conf={"config_path": str(Path(config_path).resolve())},
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
        with contextlib.suppress(Exception):
            details["airflow_version"] = client.request("GET", "/version")["version"]
        record = collect_run_record(
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
        if self.target == "local":
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

    def backfill(self, config_path: Path, dates: list[date]) -> list[RunRecord]:
        """Airflow backfills of ``dates``, one per range of consecutive days, one run at a
        time in date order (each date's promotion decision sees the earlier dates' models).

        The DAG's timetable decides the runs: with a daily schedule there is one per date,
        whose logical date picks that day's partition. A schedule that plans any other
        number of runs for a date is refused before anything runs. Dates that ran before
        are run again (``reprocess_behavior="completed"``, the same Airflow run ids):
        registration and the artifact store are idempotent, so that adds nothing.
        """
        if not dates:
            return []
        conf = {"config_path": str(Path(config_path).resolve())}
        with self._running() as client:
            config = self._load_config(config_path, None)
            client.wait_for_dag(ML_DAG_ID)
            ranges = contiguous_ranges(dates)
            for first, last in ranges:  # a schedule that does not fit: refused before any run
                self._check_one_run_per_date(client, first, last, conf)
            records: list[RunRecord] = []
            for first, last in ranges:
                client.run_backfill(
                    ML_DAG_ID,
                    first,
                    last,
                    conf=conf,
                    reprocess_behavior="completed",
                    max_active_runs=1,
                    timeout_s=RUN_TIMEOUT_S * ((last - first).days + 1),
                )
                by_date = {
                    parse_time(r["logical_date"]).astimezone(UTC).date(): r  # type: ignore[union-attr]
                    for r in client.dag_runs(ML_DAG_ID, run_type=["backfill"])
                    if r.get("logical_date")
                }
                for n in range((last - first).days + 1):
                    day = first + timedelta(days=n)
                    records.append(self._record(client, config, by_date[day], None))
                    self.report_backfill_progress(day, records[-1])
            return records

    @staticmethod
    def _check_one_run_per_date(
        client: AirflowClient, first: date, last: date, conf: dict[str, Any]
    ) -> None:
        planned = client.backfill_dry_run(
            {
                "dag_id": ML_DAG_ID,
                "from_date": datetime.combine(first, datetime.min.time(), UTC).isoformat(),
                "to_date": datetime.combine(last, datetime.max.time(), UTC).isoformat(),
                "run_backwards": False,
                "dag_run_conf": conf,
                "reprocess_behavior": "completed",
                "max_active_runs": 1,
            }
        )
        days = [p.astimezone(UTC).date() for p in planned]
        wanted = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        if sorted(days) != wanted:
            raise BackfillNotSupported(
                f"the {ML_DAG_ID} DAG's schedule plans runs for {[d.isoformat() for d in days]} "
                f"between {first} and {last}; a backfill by partition needs one run per day "
                "(a daily schedule in the config the services parse, $ORCHBENCH_AIRFLOW_CONFIG)"
            )

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
            return [_timing(t) for t in client.run_tries(dag_id, run_id)]

    # --- scaling workloads --------------------------------------------------------------
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
        tasks = [_timing(t) for t in client.run_tries(dag_id, run_id)]
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
