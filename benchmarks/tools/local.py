"""The plain-Python baseline, behind the same adapter interface as the tools.

Every operation runs in a fresh subprocess of the core environment, as every other tool
gets its own processes, so process start and imports count here too. The baseline has
no services, no queue and no scheduler: task timings have no ``queued_at`` (there is no
assignment phase to measure), a killed worker takes the whole run down, and resume
reuses the outputs of the steps that already succeeded in the failed run (same run id).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from benchmarks.environments import tool_env
from benchmarks.tools.base import (
    TaskTiming,
    ToolAdapter,
    WorkloadResult,
    WorkloadShape,
    noop_task_timings,
)
from benchmarks.tools.profiles import settings as profile_settings
from shared_ml import storage
from shared_ml.config import PipelineConfig, load_config, orchbench_home
from shared_ml.records import (
    RunRecord,
    StepRecord,
    collect_run_record,
    load_run_record,
    read_step_log,
    read_step_records,
    run_record_location,
    write_run_record,
)
from shared_ml.runner import new_run_id
from shared_ml.spec import PIPELINE, parse_task_key, task_key

# How the scaling workloads' no-op tasks are laid out on disk (shared_ml.workloads.noop).
WORKLOAD_DIR = "var/workloads"


class LocalAdapter(ToolAdapter):
    name = "local"
    execution_model = "in-process"
    execution_path = "plain Python thread pool (one process, no orchestrator)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._runs_roots: dict[str, str] = {}  # run id -> runs_root, for task_timings
        # The task concurrency every tool gets (benchmarks/tools/local.profiles.yaml).
        self.settings = profile_settings("local", self.profile)

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
        # A fresh process, as every other tool gets, so imports and warm-up count too.
        run_id = run_id or new_run_id("local")
        command = [sys.executable, "-m", "shared_ml", "--config", str(config_path)]
        command += ["--run-id", run_id]
        if seed is not None:
            command += ["--seed", str(seed)]
        if logical_date is not None:
            command += ["--date", logical_date.isoformat()]
        env = tool_env(
            {**self.settings, "ORCHBENCH_FAULTS": json.dumps(faults)} if faults else self.settings
        )
        # The same partition the child picks (no date: a manual run for today).
        config = load_config(config_path, seed=seed).for_partition(logical_date)
        self._runs_roots[run_id] = config.storage.runs_root
        started_at = datetime.now(UTC)
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode < 0:
            # Killed (e.g. the kill fault): one process is the whole baseline, so the run
            # is over. Assemble what the step files say; the running step becomes "lost".
            record = self._record(config, run_id, "failed", started_at)
            record.accepted_at = started_at  # the runner died before recording its own
            record.tool_details["killed_by_signal"] = -done.returncode
            write_run_record(config.storage.runs_root, record)
            return record
        if done.returncode not in (0, 1):
            raise RuntimeError(f"local run failed to start: {done.stderr.strip()[-2000:]}")
        return load_run_record(done.stdout.strip().splitlines()[-1])

    def resume_pipeline(self, failed: RunRecord, config_path: Path) -> RunRecord:
        """Continue ``failed`` in the same run id: tasks that succeeded keep their
        (content-addressed) outputs, the failed task and everything after it run again."""
        config = load_config(config_path, seed=failed.seed)
        self._runs_roots[failed.run_id] = config.storage.runs_root
        command = [sys.executable, "-m", "benchmarks.tools.local", "resume"]
        command += ["--config", str(config_path), "--run-id", failed.run_id]
        command += ["--seed", str(failed.seed)]
        if failed.logical_date is not None:
            command += ["--date", failed.logical_date.isoformat()]
        done = subprocess.run(
            command, env=tool_env(self.settings), capture_output=True, text=True, check=False
        )
        if done.returncode not in (0, 1):
            raise RuntimeError(f"local resume failed: {done.stderr.strip()[-2000:]}")
        return load_run_record(done.stdout.strip().splitlines()[-1])

    def backfill(self, config_path: Path, dates: list[date]) -> list[RunRecord]:
        """One run per date, oldest first, each reading its own date's partition, so each
        date's promotion decision sees the earlier dates' models. Re-running a date adds
        nothing: its artifacts are content-addressed and the registry already holds its
        model (same digest and config fingerprint)."""
        records = []
        for day in sorted(set(dates)):
            run_id = f"{new_run_id('local')}-backfill-{day:%Y%m%d}"
            record = self.run_pipeline(config_path, run_id=run_id, logical_date=day)
            records.append(record)
            self.report_backfill_progress(day, record)
        return records

    # --- scaling workloads --------------------------------------------------------
    def run_workload(self, shape: WorkloadShape, size: int) -> WorkloadResult:
        """Run the workload's no-op tasks in dependency order in one fresh process."""
        run_id = new_run_id(f"local-{shape}{size}")
        runs_root = str(orchbench_home() / WORKLOAD_DIR)
        self._runs_roots[run_id] = runs_root
        command = [sys.executable, "-m", "benchmarks.tools.local", "workload"]
        command += [shape, str(size), "--run-id", run_id, "--runs-root", runs_root]
        triggered_at = datetime.now(UTC)
        done = subprocess.run(
            command, env=tool_env(self.settings), capture_output=True, text=True, check=False
        )
        tasks = self.task_timings(run_id)
        status = "success" if done.returncode == 0 else "failed"
        details = {"stderr": done.stderr.strip()[-2000:]} if done.returncode else {}
        span = _workload_moments(runs_root, run_id).get("run", {})
        return WorkloadResult(
            shape,
            size,
            run_id,
            status,
            triggered_at,
            _epoch(span.get("ended")) or datetime.now(UTC),
            tasks,
            details,
            accepted_at=_epoch(span.get("accepted")),
        )

    # --- the tool's view of tasks -------------------------------------------------
    def step_log(self, config_path: Path, record: RunRecord, step: str, attempt: int) -> str:
        """The plain runner's own log file for the attempt (kept by ``execute_step``),
        wherever the config's runs_root is (a path or a URL)."""
        runs_root = load_config(config_path).storage.runs_root
        text = read_step_log(runs_root, record.run_id, step, attempt)
        if text is None:
            raise FileNotFoundError(
                f"no log for {step} attempt {attempt} of run {record.run_id} under {runs_root}"
            )
        return text

    def task_timings(self, run_id: str) -> list[TaskTiming]:
        """Step attempts (pipeline runs) or no-op task times (workloads) of ``run_id``.
        ``queued_at`` is None: the baseline runs each task as soon as it is ready, with no
        queue in between."""
        runs_root = self._runs_roots.get(run_id)
        if runs_root is None:
            return []
        steps = read_step_records(runs_root, run_id)
        if steps:
            return _with_runner_moments([_step_timing(s) for s in steps], runs_root, run_id)
        timings = noop_task_timings(runs_root, run_id)
        tasks = _workload_moments(runs_root, run_id).get("tasks", {})
        for t in timings:
            t.dispatched_at = _epoch(tasks.get(t.task, {}).get("dispatched"))
            t.persisted_at = _epoch(tasks.get(t.task, {}).get("persisted"))
        return timings

    def _record(
        self, config: PipelineConfig, run_id: str, status: str, started_at: datetime
    ) -> RunRecord:
        return collect_run_record(
            runs_root=config.storage.runs_root,
            run_id=run_id,
            tool=self.name,
            pipeline=PIPELINE.name,
            config_fingerprint=config.ml_fingerprint(),
            seed=config.seed,
            status=status,  # type: ignore[arg-type]
            started_at=started_at,
            ended_at=datetime.now(UTC),
            partition=config.partition,
        )


def _step_timing(step: StepRecord) -> TaskTiming:
    return TaskTiming(
        task=step.key,
        try_number=step.attempt,
        state=step.outcome,
        queued_at=None,
        started_at=step.started_at,
        ended_at=step.ended_at,
        process_up_at=step.process_started_at,
        work_started_at=step.started_at,
        work_ended_at=step.ended_at,
    )


def _epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _with_runner_moments(timings: list[TaskTiming], runs_root: str, run_id: str) -> list:
    """The plain runner's moments (shared_ml.runner: pool submit, result collected) from
    the run record: dispatched on a task's first attempt, persisted on its last (its
    retries run inside the one submitted call)."""
    location = run_record_location(runs_root, run_id)
    if not storage.exists(location):
        return timings
    moments = load_run_record(location).tool_details.get("task_moments", {})
    first = {t.task: min(x.try_number for x in timings if x.task == t.task) for t in timings}
    last = {t.task: max(x.try_number for x in timings if x.task == t.task) for t in timings}
    for t in timings:
        found = moments.get(t.task, {})
        if t.try_number == first[t.task] and found.get("dispatched"):
            t.dispatched_at = datetime.fromisoformat(found["dispatched"])
        if t.try_number == last[t.task] and found.get("persisted"):
            t.persisted_at = datetime.fromisoformat(found["persisted"])
    return timings


def _workload_moments(runs_root: str, run_id: str) -> dict[str, Any]:
    """What ``_workload`` recorded of a run: per task submitted/collected, the run's span."""
    path = Path(runs_root) / run_id / "moments.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


# --- what the subprocesses run (python -m benchmarks.tools.local ...) -------------------
def _resume(config_path: str, run_id: str, seed: int | None, logical_date: str | None) -> int:
    """Run the tasks of ``run_id`` that have not succeeded yet, one at a time in
    dependency order, each with its retry policy; reuse the outputs of those that did."""
    from shared_ml.errors import is_retryable
    from shared_ml.execution import execute_step, resolve_inputs

    config = load_config(config_path, seed=seed).for_partition(logical_date)
    runs_root = config.storage.runs_root
    candidates = config.candidate_names
    produced = {
        s.key: s.outputs for s in read_step_records(runs_root, run_id) if s.outcome == "success"
    }
    started_at = datetime.now(UTC)
    status = "success"
    for key in PIPELINE.expand(candidates):  # in dependency order
        if key in produced:
            continue  # succeeded before: its artifacts are content-addressed, reuse them
        step, branch = parse_task_key(key)
        inputs = resolve_inputs(step, _upstream_outputs(step, branch, produced, candidates))
        policy = PIPELINE.step(step).retry
        retries = 0
        while True:
            try:
                result = execute_step(step, config, inputs, run_id=run_id, branch=branch)
            except Exception as exc:
                if is_retryable(exc) and retries < policy.max_retries:
                    retries += 1
                    time.sleep(policy.delay_before_retry(retries))
                    continue
                status = "failed"
                break
            produced[key] = result["outputs"]
            break
        if status == "failed":
            break
    record = collect_run_record(
        runs_root=runs_root,
        run_id=run_id,
        tool="local",
        pipeline=PIPELINE.name,
        config_fingerprint=config.ml_fingerprint(),
        seed=config.seed,
        status=status,
        ended_at=datetime.now(UTC),
        partition=config.partition,
    )
    record.tool_details["resumed_at"] = started_at.isoformat()
    record.accepted_at = started_at  # the resume's own start: its latency is its own
    print(write_run_record(runs_root, record))
    return 0 if status == "success" else 1


def _upstream_outputs(
    step: str, branch: str | None, produced: dict[str, dict], candidates: tuple[str, ...]
) -> dict[str, Any]:
    """``resolve_inputs``'s view of what the upstreams produced: a branch sees its own
    branch's outputs, the fan-in sees the list of every branch's, in candidate order."""
    upstream: dict[str, Any] = {}
    for up in PIPELINE.step(step).upstream:
        if not PIPELINE.step(up).per_candidate:
            upstream[up] = produced[up]
        elif branch is not None:
            upstream[up] = produced[task_key(up, branch)]
        else:
            upstream[up] = [produced[task_key(up, c)] for c in candidates]
    return upstream


def _workload(shape: str, size: int, run_id: str, runs_root: str) -> int:
    """Run the tasks whose upstreams are done, up to the shared task concurrency at once
    (as the plain runner does), until all have run."""
    from concurrent.futures import ThreadPoolExecutor

    from shared_ml.concurrency import task_concurrency
    from shared_ml.workloads import noop, workload_graph

    graph = workload_graph(shape, size)  # type: ignore[arg-type]
    done: set[str] = set()
    accepted = time.time()
    tasks: dict[str, dict[str, float]] = {}
    with ThreadPoolExecutor(max_workers=task_concurrency()) as pool:
        while len(done) < len(graph):
            ready = [t for t, ups in graph.items() if t not in done and set(ups) <= done]
            submitted = time.time()
            list(pool.map(lambda task: noop(task, run_id, runs_root), ready))
            collected = time.time()  # one wave: its results are in together
            tasks.update({t: {"dispatched": submitted, "persisted": collected} for t in ready})
            done.update(ready)
    # The runner's own moments (no tool keeps them): base.py reads the noop files beside.
    moments = {"run": {"accepted": accepted, "ended": time.time()}, "tasks": tasks}
    (Path(runs_root) / run_id / "moments.json").write_text(json.dumps(moments))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tools.local")
    commands = parser.add_subparsers(dest="command", required=True)
    resume = commands.add_parser("resume", help="continue a failed baseline run")
    resume.add_argument("--config", required=True)
    resume.add_argument("--run-id", required=True)
    resume.add_argument("--seed", type=int)
    resume.add_argument("--date", help="the failed run's logical date")
    workload = commands.add_parser("workload", help="run a no-op scaling workload")
    workload.add_argument("shape", choices=["chain", "fanout"])
    workload.add_argument("size", type=int)
    workload.add_argument("--run-id", required=True)
    workload.add_argument("--runs-root", required=True)
    args = parser.parse_args(argv)
    if args.command == "resume":
        return _resume(args.config, args.run_id, args.seed, args.date)
    return _workload(args.shape, args.size, args.run_id, args.runs_root)


if __name__ == "__main__":
    sys.exit(main())
