"""Every figure the benchmark reports, defined once: name, unit, what exactly is measured.

The report prints these definitions beside the numbers, and ``results.json`` carries
them, so a number is never separated from what it means. The module is long because it
is a catalog, one entry per figure; keeping them in one place keeps their wording uniform.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Better = Literal["lower", "higher"]


@dataclass(frozen=True)
class Figure:
    key: str
    name: str
    unit: str
    scenario: str
    definition: str
    better: Better = "lower"
    # Read from code (the infra program's declared requests), not measured: shown and
    # labelled as such, never the basis of a verdict.
    declared: bool = False

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


# Scenario names, in the order they run and are reported.
SCENARIOS: dict[str, str] = {
    "setup": "Setup cost: install, import, cold start, idle footprint, authoring, cluster",
    "latency": "Latency of the ML pipeline, and the per-task phases",
    "scaling": "Scaling: chain of N and fan-out of width W no-op tasks",
    "transient": "Recovery from a transient fault (retried by the tool)",
    "resume": "Hard failure, then resume",
    "kill": "Task process killed mid-step",
    "kill_worker": "Worker-level process killed mid-step (scheduler's task supervisor, "
    "Prefect worker, KFP runner)",
    "backfill": "Backfill of K dates",
    "restart": "Server-only restart during a run",
    "restart_scheduler": "Scheduler- or worker-only restart during a run",
    "throughput": "Throughput: N workload runs and a few ML runs started at once",
    "adhoc": "Pipelines vs ad-hoc scripts: the same faults on a plain script and the plain runner",
}
RECOVERY_SCENARIOS = (
    "transient",
    "resume",
    "kill",
    "kill_worker",
    "backfill",
    "restart",
    "restart_scheduler",
)
# What each recovery scenario's runs are, for the counted figures below.
_COUNTED_RUNS = {
    "transient": "the run with the transient fault",
    "resume": "the failed run and its resume",
    "kill": "the run whose train process was killed",
    "kill_worker": "the run whose worker-level process was killed",
    "restart": "the run during which the server restarted",
    "restart_scheduler": "the run during which the scheduler (Prefect: worker) restarted",
    "backfill": "the K backfill runs",
}

_FIGURES = (
    # --- setup ---------------------------------------------------------------------
    Figure(
        "setup.install_s",
        "Environment install time",
        "s",
        "setup",
        "Wall time of `uv sync --frozen --offline --compile-bytecode --extra <tool>` "
        "(local: no extra) into an empty temporary environment on the repository's "
        "filesystem, with the uv cache warm: packages are linked or copied from the cache, "
        "nothing is downloaded, and every module is compiled, as a production install does. "
        "Not measured in quick mode.",
    ),
    Figure(
        "setup.env_size_mb",
        "Environment size on disk",
        "MB",
        "setup",
        "Sum of the apparent sizes of all files of the temporary environment made for the "
        "install time (the tool's runtime dependencies plus the project, no dev tools). "
        "Not measured in quick mode.",
    ),
    Figure(
        "setup.venv_size_mb",
        "Working environment size",
        "MB",
        "setup",
        "Sum of the apparent sizes of all files under .venvs/<tool> (local: .venvs/core), "
        "as installed here: with the dev tools (pytest, ruff, ...) common to every "
        "environment after `make envs`, the runtime only after `make demo` on a fresh clone.",
    ),
    Figure(
        "setup.import_s",
        "Import time",
        "s",
        "setup",
        "Cumulative import time of the tool's top-level package (airflow, prefect, kfp; "
        "shared_ml for local) reported by `python -X importtime -c 'import <package>'` in "
        "the tool's environment, in a fresh process.",
    ),
    Figure(
        "setup.cold_start_s",
        "Server cold start",
        "s",
        "setup",
        "From launching the tool's service processes to their health endpoint answering, "
        "as timed by the adapter's start_services().",
    ),
    Figure(
        "setup.idle_pss_mb",
        "Idle footprint (PSS)",
        "MB",
        "setup",
        "Proportional set size (psutil memory_full_info().pss) summed over the service "
        "processes and all their descendants, after the services have been healthy and "
        "idle for the settle time. PSS, not RSS: forked workers share pages.",
    ),
    Figure(
        "setup.idle_processes",
        "Idle process count",
        "processes",
        "setup",
        "Number of service processes and descendants counted for the idle footprint.",
    ),
    Figure(
        "setup.authoring_lines",
        "Authoring cost",
        "lines",
        "setup",
        "Lines of pipeline code for the tool: non-blank lines of the .py files under "
        "pipelines/<tool> that are not comments or docstrings (local: shared_ml/runner.py, "
        "the plain-Python runner). Generated files (compiled IR YAML) are not counted.",
    ),
    Figure(
        "setup.cluster_pods",
        "Cluster pods",
        "pods",
        "setup",
        "Standing pods the infra code deploys for the tool (kind stack), read statically "
        "from infra/footprint.py (declared values, not a live cluster; per-task pods are "
        "not counted).",
        declared=True,
    ),
    Figure(
        "setup.cluster_cpu_request_m",
        "Cluster CPU requests",
        "millicores",
        "setup",
        "Sum of the CPU requests of those pods, from infra/footprint.py (declared).",
        declared=True,
    ),
    Figure(
        "setup.cluster_memory_request_mib",
        "Cluster memory requests",
        "MiB",
        "setup",
        "Sum of the memory requests of those pods, from infra/footprint.py (declared).",
        declared=True,
    ),
    # --- latency -------------------------------------------------------------------
    Figure(
        "latency.first_run_s",
        "First run after start",
        "s",
        "latency",
        "Accepted to terminal state of the first pipeline run after the services started, "
        "timed like the end to end (the tool's own timestamps). It includes one-off work such as the tool discovering "
        "the pipeline (DAG parsing, deployment registration) and warming caches; it is "
        "never used as the clean reference.",
    ),
    Figure(
        "latency.end_to_end_s",
        "Pipeline end to end",
        "s",
        "latency",
        "From the tool accepting the trigger to the tool recording the run's terminal "
        "state, both the tool's own timestamps (the run record's accepted_at and ended_at; "
        "per tool in docs/benchmarks.md), so the harness's polling, log-ins and record "
        "assembly are outside it; a run after the first one, and the clean reference of "
        "the recovery scenarios.",
    ),
    Figure(
        "latency.step_execution_s",
        "Step execution",
        "s",
        "latency",
        "Sum of the step execution times of every attempt, from the run record that "
        "shared_ml.execution wrote for each step (the same code in every tool).",
    ),
    Figure(
        "latency.overhead_s",
        "Orchestration overhead",
        "s",
        "latency",
        "End to end minus step execution: everything the orchestrator (or the baseline's "
        "process start and imports) adds to the work itself.",
    ),
    Figure(
        "latency.step_peak_rss_mb",
        "Step peak memory",
        "MB",
        "latency",
        "Per step of the clean run: the peak resident memory (RSS) of the process that ran "
        "the step, sampled every 10 ms by shared_ml.execution while the step ran, from the "
        "step's record. A tool that runs steps as threads of one process (the plain "
        "runner, Prefect's flow-run process) reports that process's peak, which includes "
        "the tool itself and any branch running at the same time.",
    ),
    Figure(
        "latency.wait_s",
        "Task wait",
        "s",
        "latency",
        "Per task (first attempt): ready -> dispatched. Ready: the latest persisted moment "
        "of its upstream tasks (a root task: the run's accepted moment); dispatched: the "
        "tool handing it to whatever runs it (docs/benchmarks.md maps each tool). The "
        "median over the run's tasks.",
    ),
    Figure(
        "latency.startup_s",
        "Task start-up",
        "s",
        "latency",
        "Per task attempt: dispatched -> work start (shared_ml's step record): process "
        "start, imports, DAG parse, the tool's own task preamble. The median.",
    ),
    Figure(
        "latency.work_s",
        "Task work",
        "s",
        "latency",
        "Per task attempt: work start -> work end, from the step record shared_ml wrote "
        "inside the step (the same code in every tool). The median.",
    ),
    Figure(
        "latency.handoff_s",
        "Task hand-off",
        "s",
        "latency",
        "Per task attempt: work end -> persisted (the tool recording the task's terminal "
        "state). The median.",
    ),
    # --- scaling -------------------------------------------------------------------
    Figure(
        "scaling.end_to_end_s",
        "Workload end to end",
        "s",
        "scaling",
        "Accepted to terminal state of a chain of N no-op tasks or a fan-out of width W "
        "(root, W leaves, join), both the tool's own timestamps (as for the pipeline's end "
        "to end). A line is fitted per tool and shape: slope = seconds per extra task, "
        "intercept = fixed cost.",
    ),
    Figure(
        "scaling.wait_s",
        "Workload task wait",
        "s",
        "scaling",
        "Median over the workload's tasks of ready -> dispatched (as the pipeline's task wait).",
    ),
    Figure(
        "scaling.startup_s",
        "Workload task start-up",
        "s",
        "scaling",
        "Median over the workload's tasks of dispatched -> work start (the no-op's own start).",
    ),
    Figure(
        "scaling.handoff_s",
        "Workload task hand-off",
        "s",
        "scaling",
        "Median over the workload's tasks of work end -> persisted.",
    ),
    # --- recovery ------------------------------------------------------------------
    Figure(
        "recovery.transient_extra_s",
        "Transient fault: extra time",
        "s",
        "transient",
        "End to end of a run whose train step fails once with a retryable error, minus the "
        "clean run's end to end in the same repetition. Includes the spec's 1 s retry delay.",
    ),
    Figure(
        "recovery.transient_attempts",
        "Transient fault: extra attempts",
        "attempts",
        "transient",
        "Task attempts beyond one per task in that run, a task being a step or one branch "
        "of a per-candidate step (train[c]). The fault fails the first attempt of train in "
        "every branch, so one retry per candidate (3 on the default config) is the "
        "expected count.",
    ),
    Figure(
        "recovery.transient_completed",
        "Transient fault: run succeeded",
        "yes=1",
        "transient",
        "1 if the run with the transient fault ended in success.",
        better="higher",
    ),
    Figure(
        "recovery.resume_reexecuted_steps",
        "Resume: steps re-executed",
        "steps",
        "resume",
        "The train step fails more times than its retries allow, so the run fails; then "
        "adapter.resume_pipeline(). Counts the tasks (steps, or branches of a per-candidate "
        "step) that had succeeded in the failed run and executed again during the resume "
        "(0 = a perfect resume).",
    ),
    Figure(
        "recovery.resume_time_lost_s",
        "Resume: time lost",
        "s",
        "resume",
        "End to end of the failed run plus the resume, minus the clean run's end to end "
        "(includes the retry delays spent before the run gave up).",
    ),
    Figure(
        "recovery.resume_completed",
        "Resume: succeeded",
        "yes=1",
        "resume",
        "1 if the resumed run ended in success.",
        better="higher",
    ),
    Figure(
        "recovery.kill_detection_s",
        "Killed task process: time to detection",
        "s",
        "kill",
        "The task's own process running the train step SIGKILLs itself mid-step (fault "
        "kill_attempts=1, kill_after_s; the worker, scheduler and server stay up). From the "
        "kill to the moment the tool recorded the killed attempt as ended (its own API, "
        "adapter.task_timings).",
    ),
    Figure(
        "recovery.kill_recovery_s",
        "Killed task process: time to recovery",
        "s",
        "kill",
        "From the kill to the start of the step's next attempt (from the step records).",
    ),
    Figure(
        "recovery.kill_extra_s",
        "Killed task process: extra time",
        "s",
        "kill",
        "End to end of the run with the killed task process minus the clean run's end to end.",
    ),
    Figure(
        "recovery.kill_completed",
        "Killed task process: run succeeded",
        "yes=1",
        "kill",
        "1 if the run ended in success despite the killed task process.",
        better="higher",
    ),
    Figure(
        "recovery.backfill_runs_per_min",
        "Backfill throughput",
        "runs/min",
        "backfill",
        "K consecutive dates of configs/daily.yaml (daily partitions) backfilled with "
        "adapter.backfill(): K divided by the wall time of the whole backfill, per minute. "
        "Each tool runs as many backfill runs at once as its adapter states (the report's "
        "settings section).",
        better="higher",
    ),
    Figure(
        "recovery.backfill_steady_runs_per_min",
        "Backfill steady-state throughput",
        "runs/min",
        "backfill",
        "The same backfill, without its start-up: the runs after the first 3 to end "
        "(ordered by their run records' end times), divided by the time from the 3rd run's "
        "end to the last run's end, per minute.",
        better="higher",
    ),
    Figure(
        "recovery.backfill_total_s",
        "Backfill total time",
        "s",
        "backfill",
        "Wall time of the whole backfill of K dates, around adapter.backfill().",
    ),
    Figure(
        "recovery.backfill_succeeded",
        "Backfill: runs succeeded",
        "fraction",
        "backfill",
        "Fraction of the K backfill runs that ended in success.",
        better="higher",
    ),
    Figure(
        "recovery.restart_completed",
        "Server restart: run succeeded",
        "yes=1",
        "restart",
        "A run is started with a delay in its train step; once a train branch has started, "
        "only the tool's server is stopped (SIGTERM) and started again (adapter."
        "restart_component: Airflow's api-server, Prefect's server), the scheduler, "
        "dag-processor or worker left running. 1 if the run's terminal state, read from the "
        "tool after the restart, is success.",
        better="higher",
    ),
    Figure(
        "recovery.restart_extra_s",
        "Server restart: extra time",
        "s",
        "restart",
        "End to end of that run minus (the clean run's end to end plus the injected delay).",
    ),
    # --- throughput --------------------------------------------------------------------
    Figure(
        "throughput.runs_per_min",
        "Concurrent workload runs per minute",
        "runs/min",
        "throughput",
        "N runs of the no-op chain workload (size T) started together "
        "(adapter.run_workloads_at_once); N divided by the wall time from the first trigger "
        "to the last run's end (the tool's own end timestamp), per minute. Each tool runs "
        "tasks with its own concurrency, stated in the report's settings section.",
        better="higher",
    ),
    Figure(
        "throughput.tasks_per_s",
        "Concurrent workload tasks per second",
        "tasks/s",
        "throughput",
        "The same N runs: N x T tasks divided by that wall time.",
        better="higher",
    ),
    Figure(
        "throughput.run_latency_s",
        "Concurrent workload run latency",
        "s",
        "throughput",
        "Per run of those N: accepted to terminal, both the tool's own timestamps; a "
        "distribution, so its p95 is shown beside the median.",
    ),
    Figure(
        "throughput.ml_runs_per_min",
        "Concurrent ML runs per minute",
        "runs/min",
        "throughput",
        "M ML pipeline runs (distinct logical dates, each in its own storage) started "
        "together (adapter.run_pipelines_at_once); M divided by the wall time from the first "
        "trigger to the last run's end, per minute. A tool that admits one ML run at a time "
        "(Airflow's ML DAG: max_active_runs=1, so promotions happen in date order) queues "
        "the rest, as deployed.",
        better="higher",
    ),
    Figure(
        "throughput.ml_run_latency_s",
        "Concurrent ML run latency",
        "s",
        "throughput",
        "Per ML run of those M: from the moment the M runs were started to the run's end "
        "(its run record's end).",
    ),
)


def _disruption_figures(scenario: str, what: str, action: str) -> tuple[Figure, ...]:
    """The four figures of a scenario that disrupts a run in flight (see _COUNTED_RUNS)."""
    return (
        Figure(
            f"recovery.{scenario}_completed",
            f"{what}: run succeeded",
            "yes=1",
            scenario,
            f"A run is started with a delay in its train step; once a train branch has "
            f"started, {action}. 1 if the run's terminal state, read from the tool after "
            "the disruption, is success; 0 if it is failed or crashed, or if the tool "
            "reported none within the plan's run timeout (the outcome says which).",
            better="higher",
        ),
        Figure(
            f"recovery.{scenario}_detection_s",
            f"{what}: time to detection",
            "s",
            scenario,
            "From the disruption to the moment the tool recorded an attempt that was running "
            "at the disruption as ended in a state other than success (failed, up for "
            "retry, crashed...), from its own API (adapter.task_timings); the earliest such "
            "end. Unavailable when the tool recorded none (e.g. the attempt finished "
            "normally, or the tool never noticed).",
        ),
        Figure(
            f"recovery.{scenario}_recovery_s",
            f"{what}: time to recovery",
            "s",
            scenario,
            "From the disruption to the start of the next execution of a task that was "
            "running at the disruption (from the step records); when none ran again and "
            "the run succeeded, to the run's end; otherwise unavailable (no recovery).",
        ),
        Figure(
            f"recovery.{scenario}_extra_s",
            f"{what}: extra time",
            "s",
            scenario,
            "End to end of that run minus (the clean run's end to end plus the injected "
            "delay). Only for a run that succeeded.",
        ),
    )


def _counted_figures(scenario: str, runs: str) -> tuple[Figure, ...]:
    """Duplicates, lost attempts and registry versions (benchmarks.harness.recovery_counts)."""
    title = scenario.replace("_", " ").capitalize()
    return (
        Figure(
            f"recovery.{scenario}_duplicates",
            f"{title}: duplicate executions",
            "executions",
            scenario,
            f"In {runs}: executions of a task (a step, or one branch train[c]) that started "
            "after an earlier-started execution of the same task for the same date had "
            "succeeded, from the step records (work done again; 0 = none).",
        ),
        Figure(
            f"recovery.{scenario}_lost_attempts",
            f"{title}: attempts lost",
            "attempts",
            scenario,
            f"In {runs}: step executions whose record never got an end (outcome lost or "
            "still running once the run was over): their process died mid-step.",
        ),
        Figure(
            f"recovery.{scenario}_registry_versions",
            f"{title}: registry versions added",
            "versions",
            scenario,
            f"Model versions the scenario's own registry gained over {runs} (the registry "
            "returns the existing version for a model it already holds).",
        ),
    )


_FIGURES += (
    *_disruption_figures(
        "kill_worker",
        "Killed worker",
        "the worker-level process is SIGKILLed (adapter.kill_worker: Airflow, the "
        "LocalExecutor worker process supervising the running train task, which the "
        "executor replaces itself; Prefect, the worker process alone, then a new worker is "
        "started as a process supervisor would; KFP local, the runner process running the "
        "pipeline, with no supervisor to bring it back)",
    ),
    *_disruption_figures(
        "restart_scheduler",
        "Scheduler restart",
        "only the component that runs the work is stopped (SIGTERM, its process group: "
        "with it the task processes it started) and started again (adapter."
        "restart_component: Airflow's scheduler with its LocalExecutor, Prefect's worker)",
    ),
    # restart's completed and extra time are defined above (their keys predate these).
    *_disruption_figures("restart", "Server restart", "")[1:3],
    *(f for scenario, runs in _COUNTED_RUNS.items() for f in _counted_figures(scenario, runs)),
)
FIGURES: dict[str, Figure] = {f.key: f for f in _FIGURES}


def figure(key: str) -> Figure:
    try:
        return FIGURES[key]
    except KeyError:
        raise KeyError(f"no figure {key!r} is defined in benchmarks.harness.figures") from None


def figures_of(scenario: str) -> list[Figure]:
    return [f for f in _FIGURES if f.scenario == scenario]
