"""Pipelines vs ad-hoc scripts, measured: the same faults on ``benchmarks.adhoc_script``
and on the plain runner (``python -m shared_ml`` through the local adapter).

Four cases, each on fresh storage:

- transient: an exception on the first training attempt;
- kill: the process SIGKILLs itself ``kill_after_s`` into training (the script: into
  its middle candidate, after the ones before it were fitted);
- rerun: the same work run again after it succeeded (in the transient case's storage);
- backfill: three dates of a partitioned config; the script loops over them, re-running
  everything per date, as a script does; the runner goes through the local adapter's
  backfill. Which model scores each date is compared with the best one seen so far.

What a case records is observed, never assumed: completed work thrown away (the seconds
of steps that had succeeded and ran again to finish), steps redone, registry entries
beyond one per distinct model, and whether anything on disk records the failure. The
script's "registry" is its folder of pickled models; the runner's is its model registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from benchmarks.environments import tool_env
from benchmarks.tools.local import LocalAdapter
from shared_ml import storage
from shared_ml.config import load_config
from shared_ml.records import RunRecord, load_run_record, run_record_location
from shared_ml.registry import ModelRegistry

CASES = ("transient", "kill", "rerun", "backfill")
# The partitioned config's first three dates: the backfill case.
DAILY_DATES = [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)]
RUNNERS = ("script", "pipeline")
FAULT_STEP = "train"
SCRIPT_STEP = re.compile(r"^\[adhoc\] (?P<step>.+) done in (?P<seconds>[\d.]+) s", re.M)


@dataclass
class CaseOutcome:
    case: str
    runner: str
    completed: bool  # finished the work without a human starting anything again
    human_reruns: int  # commands a person had to run to finish (re-run, resume)
    work_lost_s: float  # seconds of completed steps thrown away and done again
    steps_redone: int
    duplicate_registry_entries: int
    failure_recorded: bool | None  # None: nothing failed
    observed: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["work_lost_s"] = round(self.work_lost_s, 4)
        data["seconds"] = round(self.seconds, 3)
        return data


# --- the script side ----------------------------------------------------------------------
@dataclass
class ScriptRun:
    returncode: int
    steps: list[tuple[str, float]]  # completed steps, from its progress lines
    stdout: str
    stderr: str

    @property
    def seconds_done(self) -> float:
        return sum(seconds for _, seconds in self.steps)


def run_script(
    config: Path, out: Path, dates: list[date] | tuple[date, ...] = (), fault: str | None = None
) -> ScriptRun:
    command = [sys.executable, "-m", "benchmarks.adhoc_script", "--config", str(config)]
    command += ["--out", str(out)]
    for day in dates:
        command += ["--date", day.isoformat()]
    env = tool_env({"ADHOC_SCRIPT_FAULT": fault} if fault else None)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    steps = [(m["step"], float(m["seconds"])) for m in SCRIPT_STEP.finditer(done.stderr)]
    return ScriptRun(done.returncode, steps, done.stdout, done.stderr)


def model_files(out: Path) -> list[Path]:
    return sorted((out / "models").glob("model-*.pkl"))


def duplicates_in(files: list[Path]) -> int:
    """Saved models beyond one per distinct model (byte-identical pickles)."""
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    return len(files) - len(digests)


def all_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def how_it_ended(run: ScriptRun) -> str:
    if run.returncode < 0:
        return f"killed by signal {-run.returncode}"
    last = run.stderr.strip().splitlines()[-1:] or [""]
    return f"exit {run.returncode}" + (f" ({last[0][:80]})" if run.returncode else "")


def script_fault_case(case: str, config: Path, out: Path, fault: str) -> CaseOutcome:
    started = time.perf_counter()
    failed = run_script(config, out, fault=fault)
    left_behind = all_files(out)  # whatever the failed run wrote: could it tell anyone?
    recovered = run_script(config, out)  # a person notices and runs it again
    redone = [s for s, _ in failed.steps if s in {name for name, _ in recovered.steps}]
    return CaseOutcome(
        case=case,
        runner="script",
        completed=failed.returncode == 0,
        human_reruns=int(failed.returncode != 0),
        work_lost_s=sum(sec for step, sec in failed.steps if step in redone),
        steps_redone=len(redone),
        duplicate_registry_entries=duplicates_in(model_files(out)),
        failure_recorded=any("error" in p.read_text(errors="replace").lower() for p in left_behind)
        if failed.returncode
        else None,
        observed=f"first run: {how_it_ended(failed)} after {len(failed.steps)} step(s) "
        f"({', '.join(s for s, _ in failed.steps)}); files it left: {len(left_behind)}; "
        f"re-run: exit {recovered.returncode}",
        seconds=time.perf_counter() - started,
    )


def script_cases(
    work: Path,
    config: Path,
    daily: Path,
    dates: list[date],
    kill_after_s: float,
    cases: tuple[str, ...],
) -> Iterator[CaseOutcome]:
    marker = work / "markers"
    marker.mkdir(parents=True, exist_ok=True)
    # The script reads no storage settings; these copies give it absolute data URLs.
    config = storage_config(config, work / "script-configs" / "default")
    daily = storage_config(daily, work / "script-configs" / "daily")
    transient_out = work / "script-transient"
    if "transient" in cases:
        fault = f"transient:{marker / 'transient'}"
        yield script_fault_case("transient", config, transient_out, fault)
    if "kill" in cases:
        fault = f"kill:{kill_after_s}:{marker / 'kill'}"
        yield script_fault_case("kill", config, work / "script-kill", fault)
    if "rerun" in cases:
        started = time.perf_counter()
        again = run_script(config, transient_out)  # the same work, run once more
        yield CaseOutcome(
            case="rerun",
            runner="script",
            completed=again.returncode == 0,
            human_reruns=0,
            work_lost_s=again.seconds_done,
            steps_redone=len(again.steps),
            duplicate_registry_entries=duplicates_in(model_files(transient_out)),
            failure_recorded=None,
            observed=f"{len(model_files(transient_out))} saved models for one piece of work",
            seconds=time.perf_counter() - started,
        )
    if "backfill" in cases:
        yield script_backfill(daily, work / "script-backfill", dates)


def script_backfill(daily: Path, out: Path, dates: list[date]) -> CaseOutcome:
    started = time.perf_counter()
    run = run_script(daily, out, dates)
    primary = load_config(daily).gate.primary_metric
    deployed = [json.loads(line)["metrics"][primary] for line in run.stdout.splitlines()]
    return CaseOutcome(
        case="backfill",
        runner="script",
        completed=run.returncode == 0,
        human_reruns=0,
        work_lost_s=0.0,
        steps_redone=0,
        duplicate_registry_entries=duplicates_in(model_files(out)),
        failure_recorded=None,
        observed=f"{len(dates)} dates: {len(model_files(out))} saved models, no promotion "
        f"decision kept; the newest model scores each date, worse than an earlier one on "
        f"{worse_than_before(deployed)} of {len(dates)} dates",
        seconds=time.perf_counter() - started,
    )


def worse_than_before(scores: list[float]) -> int:
    """Dates whose deployed model scored below the best model of an earlier date."""
    return sum(1 for i, score in enumerate(scores) if i and score < max(scores[:i]))


# --- the pipeline side (the plain runner) ------------------------------------------------------
def storage_config(source: Path, folder: Path) -> Path:
    """A copy of ``source`` whose storage lives in ``folder`` and whose data URL is absolute."""
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    raw["storage"] = {k: str(folder / k.removesuffix("_root")) for k in
                      ("artifact_root", "registry_root", "runs_root")}  # fmt: skip
    data_source = raw.get("data", {}).get("source", {})
    if data_source.get("kind") == "file" and not os.path.isabs(data_source["url"]):
        data_source["url"] = str(Path(tool_env()["ORCHBENCH_HOME"]) / data_source["url"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def registry_versions(config: Path) -> list[dict[str, Any]]:
    loaded = load_config(config)
    return ModelRegistry(loaded.storage.registry_root, loaded.name).read()["versions"]


def registry_duplicates(config: Path) -> int:
    versions = registry_versions(config)
    return len(versions) - len({v["model_digest"] for v in versions})


def recorded_failure(config: Path, record: RunRecord) -> bool:
    """Does the stored run record (a file or an object) say what failed (a failed or lost
    attempt)?"""
    location = run_record_location(load_config(config).storage.runs_root, record.run_id)
    if not storage.exists(location):
        return False
    on_disk = load_run_record(location)
    return any(s.outcome in ("failed", "lost") for s in on_disk.steps)


def redone_after(failed: RunRecord, recovery: RunRecord) -> tuple[list[str], float]:
    """Tasks that had succeeded in ``failed`` and executed again in ``recovery``."""
    done_before = {s.key: s for s in failed.steps if s.outcome == "success"}
    earlier = {(s.key, s.attempt, s.started_at) for s in failed.steps}
    again = {s.key for s in recovery.steps if (s.key, s.attempt, s.started_at) not in earlier}
    redone = sorted(k for k in again if k in done_before)
    return redone, sum(done_before[k].duration_s or 0.0 for k in redone)


def pipeline_cases(
    work: Path,
    config: Path,
    daily: Path,
    dates: list[date],
    kill_after_s: float,
    cases: tuple[str, ...],
) -> Iterator[CaseOutcome]:
    adapter = LocalAdapter()
    transient_config = storage_config(config, work / "pipeline-transient")
    if "transient" in cases:
        yield pipeline_transient(adapter, transient_config)
    if "kill" in cases:
        yield pipeline_kill(adapter, storage_config(config, work / "pipeline-kill"), kill_after_s)
    if "rerun" in cases:
        started = time.perf_counter()
        artifacts = all_files(work / "pipeline-transient" / "artifact")
        again = adapter.run_pipeline(transient_config)
        new_files = len(all_files(work / "pipeline-transient" / "artifact") - artifacts)
        yield CaseOutcome(
            case="rerun",
            runner="pipeline",
            completed=again.status == "success",
            human_reruns=0,
            work_lost_s=again.step_seconds,
            steps_redone=len({s.key for s in again.steps}),
            duplicate_registry_entries=registry_duplicates(transient_config),
            failure_recorded=None,
            observed=f"registry: {again.registry.get('reason')}; new artifact files: {new_files}",
            seconds=time.perf_counter() - started,
        )
    if "backfill" in cases:
        yield pipeline_backfill(adapter, storage_config(daily, work / "pipeline-backfill"), dates)


def pipeline_transient(adapter: LocalAdapter, config: Path) -> CaseOutcome:
    started = time.perf_counter()
    record = adapter.run_pipeline(config, faults={FAULT_STEP: {"transient_attempts": 1}})
    branches = sorted({s.branch or "" for s in record.steps if s.step == FAULT_STEP})
    attempts = [len(record.attempts(FAULT_STEP, b or None)) for b in branches]
    # Within one run, a task that succeeded and then ran again would be redone work.
    succeeded = Counter(s.key for s in record.steps if s.outcome == "success")
    redone = [key for key, times in succeeded.items() if times > 1]
    return CaseOutcome(
        case="transient",
        runner="pipeline",
        completed=record.status == "success",
        human_reruns=int(record.status != "success"),
        work_lost_s=sum(s.duration_s or 0.0 for s in record.steps if s.key in redone),
        steps_redone=len(redone),
        duplicate_registry_entries=registry_duplicates(config),
        failure_recorded=recorded_failure(config, record),
        observed=f"{FAULT_STEP} attempts per branch: {'/'.join(map(str, attempts))} "
        f"(retried in the run); status {record.status}",
        seconds=time.perf_counter() - started,
    )


def pipeline_kill(adapter: LocalAdapter, config: Path, kill_after_s: float) -> CaseOutcome:
    started = time.perf_counter()
    faults = {FAULT_STEP: {"kill_attempts": 1, "kill_after_s": kill_after_s}}
    killed = adapter.run_pipeline(config, faults=faults)
    resumed = adapter.resume_pipeline(killed, config)  # a person runs the resume command
    redone, lost = redone_after(killed, resumed)
    lost_attempts = sum(1 for s in killed.steps if s.outcome == "lost")
    return CaseOutcome(
        case="kill",
        runner="pipeline",
        completed=killed.status == "success",
        human_reruns=int(killed.status != "success"),
        work_lost_s=lost,
        steps_redone=len(redone),
        duplicate_registry_entries=registry_duplicates(config),
        failure_recorded=recorded_failure(config, killed),
        observed=f"killed by signal {killed.tool_details.get('killed_by_signal')}: "
        f"{lost_attempts} attempt(s) recorded lost; resume in the same run: {resumed.status}",
        seconds=time.perf_counter() - started,
    )


def pipeline_backfill(adapter: LocalAdapter, config: Path, dates: list[date]) -> CaseOutcome:
    started = time.perf_counter()
    records = adapter.backfill(config, dates)
    versions = {v["version"]: v for v in registry_versions(config)}
    primary = load_config(config).gate.primary_metric
    deployed = [
        versions[r.scoring["champion_version"]]["metrics"][primary]
        for r in records
        if r.scoring.get("champion_version")
    ]
    return CaseOutcome(
        case="backfill",
        runner="pipeline",
        completed=all(r.status == "success" for r in records),
        human_reruns=0,
        work_lost_s=0.0,
        steps_redone=0,
        duplicate_registry_entries=registry_duplicates(config),
        failure_recorded=None,
        observed=f"{len(dates)} dates: {len(versions)} registry versions, each with its "
        f"promotion decision ({sum(1 for v in versions.values() if v['promoted'])} promoted); "
        f"the champion scores each date, worse than an earlier one on "
        f"{worse_than_before(deployed)} of {len(deployed)} dates",
        seconds=time.perf_counter() - started,
    )


def compare(
    work: Path,
    config: Path,
    daily: Path,
    dates: list[date],
    kill_after_s: float = 0.3,
    cases: tuple[str, ...] = CASES,
) -> list[dict[str, Any]]:
    """The cases on both sides; one dict per (case, runner), script first. ``rerun``
    re-runs the transient case's work, so it needs ``transient``."""
    unknown = sorted(set(cases) - set(CASES))
    if unknown or ("rerun" in cases and "transient" not in cases):
        raise ValueError(f"cases {cases}: expected some of {CASES} (rerun needs transient)")
    rows = [c.as_dict() for c in script_cases(work, config, daily, dates, kill_after_s, cases)]
    rows += [c.as_dict() for c in pipeline_cases(work, config, daily, dates, kill_after_s, cases)]
    return rows


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.harness.adhoc WORK_DIR``: print the outcomes as JSON."""
    from benchmarks.environments import REPO_ROOT

    work = Path((argv or sys.argv[1:] or ["var/adhoc"])[0]).resolve()
    configs = REPO_ROOT / "configs"
    rows = compare(work, configs / "default.yaml", configs / "daily.yaml", DAILY_DATES)
    print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
