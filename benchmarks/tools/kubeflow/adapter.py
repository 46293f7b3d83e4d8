"""Kubeflow Pipelines behind the common adapter interface.

The core environment has no kfp, so every operation is a subprocess of ``.venvs/kubeflow``:

- ``--target local`` (default): ``python -m pipelines.kubeflow.run`` runs the committed
  IR with ``kfp.local.SubprocessRunner(use_venv=False)``. Each task is one more subprocess of
  that interpreter ("process-per-task"); there is no server, queue or scheduler.
- ``--target cluster --url URL``: ``python -m pipelines.kubeflow.deploy`` uploads the IR,
  creates the run (no recurring run unless asked) and waits ("pod-per-step": a driver and
  an executor pod per step under Argo); the config goes by value, the record comes from the
  cluster's object store, and nothing runs locally instead (``cluster.py``). Only the
  end-to-end kind workflow exercises it against a real cluster.

The run record is assembled here from the step records that ``execute_step`` wrote in each
task (the run id is a pipeline parameter), like every other tool's; its partition is the
logical date the launcher passed to every step. KFP's own stdout (every task's lines, as
kfp.local prints them) is kept in ``<runs_root>/<run id>/kubeflow.log``; each task attempt's
log, split out by the launcher, is what ``step_log`` (``orchbench logs``) reads.

Backfill is refused (``BackfillNotSupported``): the local runner has no scheduler, and on a
cluster KFP's way is a recurring run with catchup (docs/kubeflow.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

from benchmarks.environments import tool_bin, tool_env
from benchmarks.tools.base import (
    BackfillNotSupported,
    CapabilityMissing,
    TaskTiming,
    ToolAdapter,
    WorkloadResult,
    WorkloadShape,
    noop_task_timings,
)
from benchmarks.tools.disruption import ancestor_of, sigkill, wait_group_gone
from benchmarks.tools.kubeflow.cluster import ClusterRuns, cluster_step_log
from benchmarks.tools.kubeflow.task_logs import launch_moments, task_attempt_log
from benchmarks.tools.moments import step_moments
from shared_ml.config import load_config, orchbench_home
from shared_ml.records import (
    RunRecord,
    collect_run_record,
    read_step_records,
    write_run_record,
)
from shared_ml.runner import new_run_id
from shared_ml.spec import PIPELINE

RUN_TIMEOUT_S = 3600
WORKLOAD_DIR = "var/workloads"  # same layout as the other adapters' no-op workloads
WEBHOOK_ENV = "ORCHBENCH_WEBHOOK_URL"


class KubeflowRunError(RuntimeError):
    """A KFP subprocess could not run the pipeline at all (not: the pipeline failed)."""


class KubeflowAdapter(ClusterRuns, ToolAdapter):
    name = "kubeflow"
    execution_model = "process-per-task"
    execution_path = "kfp.local SubprocessRunner (subprocess per step, not a cluster)"
    database = None  # kfp.local keeps no metadata store: the outputs folder is all there is
    packages = ("kfp",)
    poll_interval_s = None  # no polling: the adapter waits for the runner's process
    moment_gaps: ClassVar[dict[str, str]] = {
        "persisted": "kfp.local has no API; for the no-op workloads (run without the "
        "launcher's task index) nothing records a task's end as kfp.local saw it",
    }

    def __init__(self, *args: Any, webhook_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.target == "cluster":
            if not self.url:
                raise ValueError("--target cluster needs --url, the KFP API URL of the cluster")
            self.execution_model = "pod-per-step"  # type: ignore[misc]
            self.execution_path = "KFP on Kubernetes (Argo: driver + executor pod per step)"
            self.database = "mysql (KFP standalone's metadata and run store)"
        # The exit handler posts here when a run fails; empty: no notification.
        self.webhook_url = (
            webhook_url if webhook_url is not None else os.environ.get(WEBHOOK_ENV, "")
        )
        self._runs_roots: dict[str, str] = {}  # run id -> runs_root, for task_timings
        self._task_indexes: dict[str, str] = {}  # run id -> the launcher's task index

    # --- the pipeline -------------------------------------------------------------
    def run_pipeline(
        self,
        config_path: Path,
        *,
        seed: int | None = None,
        run_id: str | None = None,
        faults: dict[str, dict[str, Any]] | None = None,
        logical_date: date | None = None,
    ) -> RunRecord:
        run_id = run_id or new_run_id("kubeflow")
        if self.target == "cluster":
            return self._run_on_cluster(config_path, seed, run_id, logical_date)
        return self._run_locally(config_path, seed, run_id, faults, logical_date)

    def resume_pipeline(self, failed: RunRecord, config_path: Path) -> RunRecord:
        """Re-submit the failed run (same run id, seed, date and parameters) with caching
        on: KFP's cache returns the tasks that succeeded (each candidate branch's too), so
        only the failed task and its downstream execute again. They show up as new
        attempts in the record."""
        if self.target == "cluster":
            return self._resume_on_cluster(failed, config_path)
        resumed_at = datetime.now(UTC)
        record = self._run_locally(
            config_path, failed.seed, failed.run_id, None, failed.logical_date
        )
        record.tool_details["resumed_at"] = resumed_at.isoformat()
        record.tool_details["re_executed"] = sorted(
            {s.key for s in record.steps if s.started_at >= resumed_at}
        )
        write_run_record(self._runs_roots[failed.run_id], record)
        return record

    def _run_locally(
        self,
        config_path: Path,
        seed: int | None,
        run_id: str,
        faults: dict[str, dict[str, Any]] | None,
        logical_date: date | None,
    ) -> RunRecord:
        config = load_config(config_path, seed=seed)  # fails fast on a bad config
        command = ["-m", "pipelines.kubeflow.run", "pipeline"]
        command += ["--config", str(Path(config_path).resolve()), "--run-id", run_id]
        command += ["--seed", str(config.seed), "--webhook-url", self.webhook_url]
        if logical_date is not None:
            command += ["--date", logical_date.isoformat()]
        extra_env = {"ORCHBENCH_FAULTS": json.dumps(faults)} if faults else None
        summary = self._kubeflow_python(command, extra_env, keep_log=True)
        runs_root = summary["runs_root"]
        self._runs_roots[run_id] = runs_root
        if summary.get("task_logs"):
            self._task_indexes[run_id] = summary["task_logs"]
        # The date kubeflow.run resolved and passed to every step (today for a manual run).
        config = config.for_partition(summary["logical_date"])
        record = collect_run_record(
            runs_root=runs_root,
            run_id=run_id,
            tool=self.name,
            pipeline=PIPELINE.name,
            config_fingerprint=config.ml_fingerprint(),
            seed=config.seed,
            status=summary["status"],
            started_at=datetime.fromisoformat(summary["started_at"]),
            ended_at=datetime.fromisoformat(summary["ended_at"]),
            partition=config.partition,
            tool_details={
                "target": "local",
                "runner": "kfp.local.SubprocessRunner(use_venv=False)",
                "execution_model": self.execution_model,
                "pipeline_root": summary["pipeline_root"],
                "ir": summary["ir"],
                "cache_hits": summary["cache_hits"],
                "error": summary["error"],
                "log": summary["log"],
                "task_logs": summary["task_logs"],
            },
        )
        record.versions["kfp"] = summary["kfp_version"]
        record.accepted_at = record.started_at  # the runner's own start (kubeflow.run)
        write_run_record(runs_root, record)
        return record

    def backfill(self, config_path: Path, dates: list[date]) -> list[RunRecord]:
        """Refused: KFP's local runner has no scheduler, hence no backfill of its own, and a
        loop of manual runs here would not be KFP's mechanism."""
        load_config(config_path)  # a bad config is still reported as such
        raise BackfillNotSupported(
            "kubeflow: backfill is not supported locally (kfp.local has no scheduler). "
            "On a KFP cluster, backfill with a recurring run that catches up: "
            "kfp.Client().create_recurring_run(..., start_time=<first date>, "
            "no_catchup=False). Locally, run one date at a time: "
            "orchbench run --tool kubeflow --date YYYY-MM-DD."
        )

    # --- disruption (benchmarks/harness/scenarios_disruption.py) --------------------
    def kill_worker(self, step_pid: int) -> str:
        """SIGKILL the runner process (``python -m pipelines.kubeflow.run``, which runs
        kfp.local and launches each step's subprocess). kfp.local has no scheduler or
        server to notice or start it again: the run ends there, its running step left to
        finish as an orphan."""
        if self.target != "local":
            raise CapabilityMissing("the runner is killed only for kfp.local runs")
        runner = ancestor_of(
            step_pid,
            lambda p: "pipelines.kubeflow.run" in " ".join(p.cmdline()),
            "kfp.local runner process (python -m pipelines.kubeflow.run)",
        )
        # The steps it launched share its process group (_kubeflow_python starts a new
        # session): read_run_record waits for them before reading their records.
        self._killed_runner_group = os.getpgid(runner.pid)
        return f"SIGKILLed the kfp.local runner, {sigkill(runner)}; nothing restarts it"

    def read_run_record(self, run_id: str, config_path: Path) -> RunRecord:
        """After the runner died: once the steps it had launched are gone too, the run's
        step records as they stand, status failed (the runner reported no end, and nothing
        else would)."""
        if self.target == "cluster":
            raise CapabilityMissing("kubeflow: a run is read back by id only after a local kill")
        group = getattr(self, "_killed_runner_group", None)
        if group is not None and not wait_group_gone(group, RUN_TIMEOUT_S):
            raise KubeflowRunError(f"the killed runner's steps still run after {RUN_TIMEOUT_S} s")
        config = load_config(config_path)
        runs_root = config.storage.runs_root
        if not read_step_records(runs_root, run_id):
            raise KubeflowRunError(f"run {run_id}: no step records under {runs_root}")
        self._runs_roots[run_id] = runs_root
        record = collect_run_record(
            runs_root=runs_root,
            run_id=run_id,
            tool=self.name,
            pipeline=PIPELINE.name,
            config_fingerprint=config.ml_fingerprint(),
            seed=config.seed,
            status="failed",
            tool_details={"target": "local", "runner": "killed before it reported an end"},
        )
        write_run_record(runs_root, record)
        return record

    # --- logs ---------------------------------------------------------------------
    def step_log(self, config_path: Path, record: RunRecord, step: str, attempt: int) -> str:
        """The log KFP ran ``step`` attempt ``attempt`` with, from KFP's local outputs (the
        run's task log index, ``task_logs.py``); a cluster run's from the cluster's object
        store, where its pod wrote it."""
        if record.tool_details.get("target") == "cluster":
            return cluster_step_log(config_path, record, step, attempt)
        return task_attempt_log(record, step, attempt)

    # --- scaling workloads --------------------------------------------------------
    def run_workload(self, shape: WorkloadShape, size: int) -> WorkloadResult:
        """A chain of ``size`` no-op components, or a fan-out of width ``size``, run by the
        local runner. It runs the tasks of a static graph one at a time (only
        ``dsl.ParallelFor`` iterations run side by side locally, at most two), each as its
        own subprocess."""
        if self.target == "cluster":
            return self._cluster_workload(shape, size)
        run_id = new_run_id(f"kubeflow-{shape}{size}")
        runs_root = str(orchbench_home() / WORKLOAD_DIR)
        self._runs_roots[run_id] = runs_root
        command = ["-m", "pipelines.kubeflow.run", "workload", "--shape", shape]
        command += ["--size", str(size), "--run-id", run_id, "--runs-root", runs_root]
        triggered_at = datetime.now(UTC)
        summary = self._kubeflow_python(command, None, keep_log=False)
        details = {"kfp_duration_s": summary["duration_s"], "error": summary["error"]}
        return WorkloadResult(
            shape,
            size,
            run_id,
            summary["status"],
            triggered_at,
            datetime.fromisoformat(summary["ended_at"]),  # the runner's own end
            self.task_timings(run_id),
            details,
            accepted_at=datetime.fromisoformat(summary["started_at"]),
        )

    # --- the tool's view of tasks -------------------------------------------------
    def task_timings(self, run_id: str) -> list[TaskTiming]:
        """Step attempts (pipeline runs) or no-op task times (workloads) of ``run_id``, from
        the files the tasks wrote: the local runner has no API that reports timings.
        ``queued_at`` is None: there is no queue between a ready task and its subprocess.

        Moments: a pipeline task is dispatched when the launcher's handler starts kfp.local's
        subprocess for it and persisted when that subprocess has exited, its executor
        output written (the task index of pipelines/kubeflow/task_logs.py); a workload task
        (no index) is dispatched at its process's start and has no persisted moment."""
        runs_root = self._runs_roots.get(run_id)
        if runs_root is None:
            return []
        steps = read_step_records(runs_root, run_id)
        if not steps:
            timings = noop_task_timings(runs_root, run_id)
            for t in timings:
                t.dispatched_at = t.process_up_at
            return timings
        launched = launch_moments(self._task_indexes.get(run_id))
        timings = []
        for s in steps:
            dispatched, persisted = launched.get((s.key, s.attempt), (None, None))
            timings.append(
                TaskTiming(
                    s.key,
                    s.attempt,
                    s.outcome,
                    None,
                    s.started_at,
                    s.ended_at,
                    dispatched_at=dispatched,
                    persisted_at=persisted,
                )
            )
        return step_moments(timings, steps)

    # --- the subprocess -----------------------------------------------------------
    def _kubeflow_python(
        self, args: list[str], extra_env: dict[str, str] | None, keep_log: bool
    ) -> dict[str, Any]:
        """Run ``.venvs/kubeflow/bin/python <args>``; return the JSON summary it prints last.

        Exit 0 or 1 (the run succeeded or failed) yield the summary; anything else means the
        run could not happen, raised with the subprocess's last words. Its own process
        group, so a timeout kills the task subprocesses too.
        """
        command = [str(tool_bin("kubeflow", "python")), *args]
        process = subprocess.Popen(
            command,
            env=tool_env(extra_env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        what = " ".join(a for a in args[1:3] if not a.startswith("-"))
        try:
            stdout, stderr = process.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise KubeflowRunError(f"{what} took over {RUN_TIMEOUT_S} s") from None
        except BaseException:  # e.g. Ctrl-C: the task subprocesses must not outlive us
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
        lines = stdout.strip().splitlines()
        if process.returncode == 2:  # refused before any work: bad config, unreachable API
            raise KubeflowRunError(f"{what}: {stderr.strip()[-2000:]}")
        if process.returncode not in (0, 1) or not lines:
            last_words = (stderr.strip() or stdout.strip())[-2000:]
            raise KubeflowRunError(f"{what} exited {process.returncode}: {last_words}")
        try:
            summary = json.loads(lines[-1])
        except json.JSONDecodeError:  # it crashed (exit 1 is also Python's traceback exit)
            raise KubeflowRunError(
                f"{what} exited {process.returncode} without a summary: {stderr.strip()[-2000:]}"
            ) from None
        summary["log"] = None
        if keep_log and summary.get("runs_root"):
            log = Path(summary["runs_root"]) / summary["run_id"] / "kubeflow.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a", encoding="utf-8") as out:  # a resume appends to the run's log
                out.write(f"=== {' '.join(args)}\n{stdout}\n--- stderr ---\n{stderr}\n")
            summary["log"] = str(log)
        return summary
