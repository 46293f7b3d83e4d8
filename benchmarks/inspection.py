"""``orchbench runs``, ``show``, ``registry`` and ``logs``: what happened, from the records.

``runs``, ``show`` and ``registry`` read what every tool leaves in the config's storage
(the run records every adapter writes, the registry index). ``logs`` asks the tool that
ran the step, through its adapter: the plain runner's log files, Airflow's task-instance
log endpoint, Prefect's logs API, KFP's local outputs.

Exit codes: 0 found, 1 nothing to show (no such run, registry or log), 2 bad arguments
or config.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from benchmarks.environments import EnvironmentMissing
from benchmarks.tools import TOOLS, default_url, get_adapter
from benchmarks.tools.base import CapabilityMissing
from shared_ml import storage
from shared_ml.config import PipelineConfig, load_config
from shared_ml.errors import ConfigError, RegistryError
from shared_ml.records import RunRecord, RunRecordError, load_run_record, run_record_location
from shared_ml.registry import ModelRegistry

err_console = Console(stderr=True)
out_console = Console()

ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config", "-c", help="The pipeline config whose storage holds the runs and registry."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def print_record(record: RunRecord, primary: str = "f1") -> None:
    """The run as a table of task attempts (``train[forest]`` for a branch), then what it
    chose, registered and scored."""
    dated = f" for {record.logical_date}" if record.logical_date else ""
    table = Table(title=f"{record.tool} run {record.run_id}{dated}: {record.status}")
    for column in ("step", "attempt", "outcome", "seconds", "peak RSS MB", "error"):
        table.add_column(column)
    for s in record.steps:
        table.add_row(
            Text(s.key),  # not markup: "[forest]" would read as a style tag
            str(s.attempt),
            s.outcome,
            f"{s.duration_s:.3f}" if s.duration_s is not None else "-",
            f"{s.peak_rss_mb:.0f}" if s.peak_rss_mb else "-",
            Text(s.error.message[:60] if s.error else ""),
        )
    out_console.print(table)
    if record.data_interval:
        begin, end = record.data_interval
        out_console.print(
            f"logical date: {record.logical_date} (data interval {begin:%Y-%m-%d %H:%M} to "
            f"{end:%Y-%m-%d %H:%M} UTC)"
        )
    if record.candidates:
        ranking = "; ".join(
            f"{c['rank']}. {c['candidate']} {primary}={c.get(primary, float('nan')):.4f}"
            + ("" if c.get("gate_passed", True) else " (failed the gate)")
            for c in record.candidates
        )
        out_console.print(f"candidates: {escape(ranking)}")
    if record.selected_candidate:
        out_console.print(f"selected candidate: {record.selected_candidate}")
    if record.metrics:
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in record.metrics.items())
        out_console.print(f"metrics: {metrics}")
        out_console.print(f"prediction hash: {record.prediction_hash}")
    if record.registry:
        out_console.print(
            f"registry: version {record.registry.get('version')}, "
            f"promoted={record.registry.get('promoted')} ({record.registry.get('reason')}); "
            f"champion v{record.registry.get('champion_version')}"
        )
    if record.scoring:
        scoring = record.scoring
        out_console.print(
            f"scoring: {scoring.get('rows_scored')} rows scored by champion "
            f"v{scoring.get('champion_version')} ({scoring.get('champion_candidate')})"
            if scoring.get("scored")
            else f"scoring: nothing scored ({scoring.get('reason', 'no champion')})"
        )


def _fail(message: str, code: int) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def _config(path: Path) -> PipelineConfig:
    try:
        return load_config(path)
    except ConfigError as err:
        _fail(f"invalid config: {err}", 2)
    raise AssertionError("unreachable")


def read_runs(runs_root: str) -> tuple[list[RunRecord], list[str]]:
    """Every run record under ``runs_root`` (a path or a URL such as ``s3://bucket/runs``),
    newest first, and one problem line per record that could not be read (named by its
    location; it is skipped, not fatal). A run folder without a record yet is left out."""
    records, problems = [], []
    for run_id in storage.list_names(runs_root, folders=True):
        location = run_record_location(runs_root, run_id)
        try:
            records.append(RunRecord.model_validate_json(storage.read_text(location)))
        except FileNotFoundError:
            continue
        except (OSError, ValueError, ValidationError) as err:
            first = str(err).splitlines()[0]
            problems.append(
                f"{location}: not a readable run record ({type(err).__name__}: {first})"
            )
    records.sort(key=lambda r: (r.started_at is not None, r.started_at), reverse=True)
    return records, problems


def run_summary(record: RunRecord) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "tool": record.tool,
        "logical_date": record.logical_date.isoformat() if record.logical_date else None,
        "started_at": record.started_at.isoformat() if record.started_at else None,
        "status": record.status,
        "duration_s": record.duration_s,
        "selected_candidate": record.selected_candidate,
        "metrics": record.metrics,
        "prediction_hash": record.prediction_hash,
    }


def runs(
    config: ConfigOption = Path("configs/default.yaml"),
    tool: Annotated[str | None, typer.Option("--tool", "-t", help="Only this tool's runs.")] = None,
    limit: Annotated[int, typer.Option(help="How many of the newest runs.", min=1)] = 20,
    as_json: JsonOption = False,
) -> None:
    """List recent runs across tools: tool, date, status, duration, metrics, selection."""
    if tool is not None and tool not in TOOLS:
        _fail(f"--tool {tool!r}: expected one of {', '.join(TOOLS)}", 2)
    loaded = _config(config)
    try:
        records, problems = read_runs(loaded.storage.runs_root)
    except Exception as err:  # a refused port-forward, missing keys, a 403
        _fail(f"cannot list the runs in {loaded.storage.runs_root}: {type(err).__name__}: {err}", 1)
    for problem in problems:
        err_console.print(f"[yellow]warning:[/] {escape(problem)}", soft_wrap=True)
    chosen = [r for r in records if tool is None or r.tool == tool][:limit]
    if as_json:
        sys.stdout.write(json.dumps([run_summary(r) for r in chosen], indent=2) + "\n")
        return
    primary = loaded.gate.primary_metric
    table = Table(title=f"Runs in {loaded.storage.runs_root} (newest first)")
    for column in ("run id", "tool", "date", "status", "seconds", primary, "selected"):
        table.add_column(column)
    for r in chosen:
        table.add_row(
            r.run_id,
            r.tool,
            str(r.logical_date or "-"),
            r.status,
            f"{r.duration_s:.1f}" if r.duration_s is not None else "-",
            f"{r.metrics[primary]:.4f}" if primary in r.metrics else "-",
            r.selected_candidate or "-",
        )
    out_console.print(table if chosen else "no runs recorded yet")


def load_run(loaded: PipelineConfig, run_id: str) -> RunRecord:
    """The run's record, wherever the config's runs_root is (a path or a URL)."""
    location = run_record_location(loaded.storage.runs_root, run_id)
    try:
        return load_run_record(location)
    except RunRecordError as err:
        if err.problem == "not found":
            _fail(f"no run {run_id!r}: {location} does not exist (see `orchbench runs`)", 1)
        _fail(str(err), 1)  # unreadable (no access to the store) or not a run record
    raise AssertionError("unreachable")


def show(
    run_id: Annotated[str, typer.Argument(help="The run id (see `orchbench runs`).")],
    config: ConfigOption = Path("configs/default.yaml"),
    as_json: JsonOption = False,
) -> None:
    """One run: per step and branch its attempts, durations, peak memory and outcome."""
    loaded = _config(config)
    record = load_run(loaded, run_id)
    if as_json:
        sys.stdout.write(record.model_dump_json(indent=2) + "\n")
        return
    print_record(record, loaded.gate.primary_metric)
    started = record.started_at
    if started is not None and record.steps:
        out_console.print("step timeline (seconds from the run's start):")
        for s in record.steps:
            end = (s.ended_at - started).total_seconds() if s.ended_at else None
            out_console.print(
                Text(
                    f"  {s.key:<18} attempt {s.attempt}  "
                    f"{(s.started_at - started).total_seconds():7.3f} -> "
                    f"{f'{end:7.3f}' if end is not None else '   open'}  {s.outcome}"
                )
            )


def read_registry(root: str, name: str) -> dict[str, Any] | None:
    """The index of the registry ``name`` under ``root`` (a path or an object-store URL such
    as ``s3://bucket/registry``), or None when there is none; nothing is created."""
    if storage.is_remote(root):  # one object per version: no versions, no registry
        index = ModelRegistry(root, name).read()
        return index if index["versions"] else None
    if not storage.exists(storage.join(root, name, "index.json")):
        return None
    return ModelRegistry(root, name).read()


def registry_names(root: str) -> list[str]:
    """The registries under ``root``: its folders (on an object store, its prefixes), those
    with an index where the registry is local."""
    names = storage.list_names(root, folders=True)
    if storage.is_remote(root):
        return names
    return [n for n in names if storage.exists(storage.join(root, n, "index.json"))]


def registry(
    config: ConfigOption = Path("configs/default.yaml"),
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Registry name (default: the config's).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A registry's versions, its champion and the promotion history."""
    loaded = _config(config)
    name = name or loaded.name
    root = loaded.storage.registry_root
    try:
        index = read_registry(root, name)
        known = registry_names(root) if index is None else []
    except RegistryError as err:
        _fail(str(err), 1)
    except Exception as err:  # a refused port-forward, missing keys, a 403
        _fail(f"cannot read the registry {name!r} in {root}: {type(err).__name__}: {err}", 1)
    if index is None:
        _fail(
            f"no registry {name!r} under {root}"
            + (f"; registries there: {', '.join(known)}" if known else "; it holds none yet"),
            1,
        )
    if as_json:
        sys.stdout.write(json.dumps({"name": name, **index}, indent=2) + "\n")
        return
    primary = loaded.gate.primary_metric
    table = Table(title=f"Registry {name}: champion v{index['champion'] or '-'}")
    for column in ("version", "candidate", "date", primary, "gate", "promoted", "reason"):
        table.add_column(column)
    for v in index["versions"]:
        table.add_row(
            f"v{v['version']}" + (" *" if v["version"] == index["champion"] else ""),
            v.get("candidate") or "-",
            v.get("logical_date") or "-",
            f"{v['metrics'][primary]:.4f}" if primary in v.get("metrics", {}) else "-",
            "passed" if v.get("gate_passed") else "failed",
            {True: "yes", False: "no"}.get(v.get("promoted"), "-"),
            Text(v.get("reason") or "-"),
        )
    out_console.print(table)


def logs(
    run_id: Annotated[str, typer.Argument(help="The run id (see `orchbench runs`).")],
    tool: Annotated[str, typer.Option("--tool", "-t", help=f"One of: {', '.join(TOOLS)}.")],
    step: Annotated[
        str | None,
        typer.Option(help="The step, `train[forest]` for a branch (default: every step)."),
    ] = None,
    attempt: Annotated[
        int | None, typer.Option(help="The attempt (default: the last).", min=1)
    ] = None,
    config: ConfigOption = Path("configs/default.yaml"),
    url: Annotated[str | None, typer.Option(help="The tool's API URL.")] = None,
) -> None:
    """Print a step's log, read through the tool's own API or store."""
    if tool not in TOOLS:
        _fail(f"--tool {tool!r}: expected one of {', '.join(TOOLS)}", 2)
    loaded = _config(config)
    record = load_run(loaded, run_id)
    if record.tool != tool:
        _fail(f"run {run_id!r} ran on {record.tool}, not {tool}: pass --tool {record.tool}", 2)
    keys = list(dict.fromkeys(s.key for s in record.steps))
    if step is not None and step not in keys:
        _fail(f"--step {step!r}: run {run_id} has steps {', '.join(keys)}", 2)
    try:
        adapter = get_adapter(tool, url=url or default_url(tool))
        for key in [step] if step else keys:
            attempts = [s.attempt for s in record.steps if s.key == key]
            if attempt is not None and attempt not in attempts:
                _fail(f"--attempt {attempt}: {key} ran attempts {attempts}", 2)
            number = attempt or max(attempts)
            text = adapter.step_log(config, record, key, number)
            # Raw lines (no wrapping, no markup): they are meant for grep and copy.
            sys.stdout.write(f"=== {key} attempt {number} ===\n")
            sys.stdout.write(text if text.endswith("\n") or not text else f"{text}\n")
            sys.stdout.write("" if text else "(empty log)\n")
            sys.stdout.flush()
    except CapabilityMissing as err:
        _fail(str(err) or f"{tool} cannot read step logs", 1)
    except EnvironmentMissing as err:
        _fail(str(err), 2)
    except typer.Exit:
        raise
    except Exception as err:
        if os.environ.get("ORCHBENCH_DEBUG"):
            raise
        _fail(f"cannot read the log from {tool}: {type(err).__name__}: {err}", 1)


def register_commands(app: typer.Typer) -> None:
    for command in (runs, show, registry, logs):
        app.command(command.__name__)(command)
