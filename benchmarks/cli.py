"""``orchbench``: run the pipeline on any tool, manage local services, benchmark, report."""

from __future__ import annotations

import json
import os
import sys
from datetime import date, timedelta
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from benchmarks import inspection
from benchmarks.environments import EnvironmentMissing
from benchmarks.inspection import print_record
from benchmarks.tools import PATHS, TOOLS, check_path, default_url, get_adapter
from benchmarks.tools.base import BackfillNotSupported, CapabilityMissing, ToolAdapter
from shared_ml import storage
from shared_ml.config import load_config, parse_logical_date
from shared_ml.errors import ConfigError
from shared_ml.records import RunRecord

app = typer.Typer(
    name="orchbench",
    help="Run one scikit-learn pipeline on Airflow, Prefect, Kubeflow Pipelines or plain "
    "Python, and compare the tools on the same work.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)
out_console = Console()


@app.callback()
def _root() -> None:
    """orchbench: one ML pipeline, four ways to run it, and the comparison."""


def fail(message: str, code: int) -> None:
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


def _parse_faults(values: list[str] | None) -> dict[str, dict[str, Any]] | None:
    """``--fault train:transient_attempts=1`` -> ``{"train": {"transient_attempts": 1}}``."""
    if not values:
        return None
    faults: dict[str, dict[str, Any]] = {}
    for value in values:
        try:
            step, assignment = value.split(":", 1)
            key, raw = assignment.split("=", 1)
        except ValueError:
            fail(f"--fault {value!r}: expected STEP:KEY=VALUE, e.g. train:transient_attempts=1", 2)
        faults.setdefault(step, {})[key] = (
            json.loads(raw) if raw[:1].isdigit() or raw in ("true", "false") else raw
        )
    return faults


def parse_date_option(value: str | None, option: str) -> date | None:
    """``YYYY-MM-DD`` or exit 2 naming the option."""
    if value is None:
        return None
    try:
        return parse_logical_date(value, option)
    except ConfigError as err:
        fail(str(err), 2)
    raise AssertionError("unreachable")


def check_choices(tool: str, target: str) -> None:
    if tool not in TOOLS:
        fail(f"--tool {tool!r}: expected one of {', '.join(TOOLS)}", 2)
    if target not in ("local", "cluster"):
        fail(f"--target {target!r}: expected local or cluster", 2)


@app.command()
def run(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Pipeline config (YAML or JSON).")
    ] = Path("configs/default.yaml"),
    tool: Annotated[
        str, typer.Option("--tool", "-t", help=f"One of: {', '.join(TOOLS)}.")
    ] = "local",
    seed: Annotated[int | None, typer.Option(help="Override the config's seed.")] = None,
    run_id: Annotated[str | None, typer.Option(help="Run id (default: generated).")] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="Inject a fault, STEP:KEY=VALUE (keys of FaultSpec), repeatable."),
    ] = None,
    target: Annotated[str, typer.Option(help="local (this machine) or cluster.")] = "local",
    url: Annotated[
        str | None, typer.Option(help="The tool's API URL, for --target cluster.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run record as JSON.")] = False,
    logical_date: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="The run's logical date, YYYY-MM-DD: picks the data partition "
            "(default: today, as a manual run).",
        ),
    ] = None,
    path: Annotated[
        str | None,
        typer.Option(
            "--path",
            help="Execution path, for a tool that has more than one: "
            + "; ".join(f"{t}: {', '.join(p)} (default {p[0]})" for t, p in PATHS.items())
            + ". The benchmark measures the default.",
        ),
    ] = None,
) -> None:
    """Run the ML pipeline end to end on one tool and print its run record.

    Exit codes: 0 success, 1 the pipeline failed, 2 invalid config or arguments.

    With --target cluster, 1 also when the run record read back from the
    cluster lacks steps, metrics or the prediction hash.
    """
    check_choices(tool, target)
    if path is not None:
        try:
            check_path(tool, path)
        except ValueError as err:
            fail(str(err), 2)
    day = parse_date_option(logical_date, "--date")
    faults = _parse_faults(fault)
    from shared_ml.preflight import preflight  # pandas: only the commands that read data

    try:
        loaded = load_config(config, seed=seed)
        if faults:
            loaded = loaded.with_overrides(faults={**loaded.faults, **faults})
        preflight(loaded.for_partition(day))
    except ConfigError as err:
        fail(f"invalid config: {err}", 2)
    try:
        adapter = get_adapter(tool, target=target, url=url or default_url(tool), path=path)
    except (ValueError, EnvironmentMissing) as err:  # e.g. --path in-process with a cluster
        fail(str(err), 2)
    try:
        with err_console.status(f"running {loaded.name} on {tool}..."):
            record = adapter.run_pipeline(
                config, seed=seed, run_id=run_id, faults=faults, logical_date=day
            )
    except ConfigError as err:
        fail(f"invalid config: {err}", 2)
    except EnvironmentMissing as err:
        fail(str(err), 2)
    except Exception as err:
        # The adapters raise errors that say what went wrong and where (endpoint, status,
        # body excerpt); a traceback adds nothing for a user. ORCHBENCH_DEBUG=1 shows it.
        if os.environ.get("ORCHBENCH_DEBUG"):
            raise
        fail(f"{tool} run did not complete: {type(err).__name__}: {err}", 1)
    if as_json:
        sys.stdout.write(record.model_dump_json(indent=2) + "\n")
    else:
        print_record(record, loaded.gate.primary_metric)
        out_console.print(f"artifacts: {loaded.storage.artifact_root}")
        out_console.print(
            f"run record: {storage.join(loaded.storage.runs_root, record.run_id, 'run.json')}"
        )
    note_services_left_running(adapter)
    if record.status != "success":
        raise typer.Exit(1)
    if target == "cluster":
        missing = incomplete_record(record)
        if missing:
            fail(
                f"{tool} reported run {record.run_id} successful, but its run record read "
                f"back from the cluster's store lacks {', '.join(missing)}: the pods' step "
                "records did not reach the store, or the store could not be read",
                1,
            )
    raise typer.Exit(0)


def incomplete_record(record: RunRecord) -> list[str]:
    """What a successful run's record lacks of what every successful run writes (its step
    records, and select's metrics and prediction hash). A cluster run's record is assembled
    from the pods' step records on the object store: a gap means they were not read."""
    missing = [name for name in ("steps", "metrics") if not getattr(record, name)]
    if not record.prediction_hash:
        missing.append("prediction_hash")
    return missing


def note_services_left_running(adapter: ToolAdapter) -> None:
    """Say so when a command started services and left them up (stderr: --json output
    stays clean)."""
    left = adapter.services_left_running()
    if left:
        err_console.print(f"note: {left}", markup=False, highlight=False)


# A backfill is one run per date: bounded so that a typo in a year cannot start thousands.
MAX_BACKFILL_DATES = 366


def backfill_dates(start: str, end: str) -> list[date]:
    first = parse_date_option(start, "--start")
    last = parse_date_option(end, "--end")
    assert first is not None and last is not None
    if first > last:
        fail(f"--start {first} is after --end {last}", 2)
    count = (last - first).days + 1
    if count > MAX_BACKFILL_DATES:
        fail(
            f"--start {first} --end {last}: {count} dates, at most {MAX_BACKFILL_DATES} "
            "per backfill (split the range)",
            2,
        )
    return [first + timedelta(days=i) for i in range(count)]


def date_line(day: date, record: RunRecord, primary: str) -> str:
    registry = record.registry
    value = record.metrics.get(primary)
    return (
        f"{day}: {record.status}"
        + (f", {record.selected_candidate} {primary}={value:.4f}" if value is not None else "")
        + (
            f", registry v{registry.get('version')} "
            f"{'promoted' if registry.get('promoted') else 'not promoted'}"
            if registry
            else ""
        )
    )


def backfill_table(records: list[RunRecord], primary: str, tool: str) -> Table:
    table = Table(title=f"{tool} backfill: {len(records)} date(s)")
    for column in (
        "date",
        "status",
        "selected",
        primary,
        "registry version",
        "promoted",
        "champion",
    ):
        table.add_column(column)
    for r in records:
        registry = r.registry
        table.add_row(
            str(r.logical_date or "-"),
            r.status,
            r.selected_candidate or "-",
            f"{r.metrics[primary]:.4f}" if primary in r.metrics else "-",
            str(registry.get("version", "-")),
            ("yes" if registry.get("promoted") else "no") if registry else "-",
            f"v{registry['champion_version']}" if registry.get("champion_version") else "-",
        )
    return table


@app.command()
def backfill(
    start: Annotated[str, typer.Option("--start", help="First logical date, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--end", help="Last logical date, YYYY-MM-DD.")],
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Pipeline config (YAML or JSON).")
    ] = Path("configs/daily.yaml"),
    tool: Annotated[
        str, typer.Option("--tool", "-t", help=f"One of: {', '.join(TOOLS)}.")
    ] = "local",
    target: Annotated[str, typer.Option(help="local (this machine) or cluster.")] = "local",
    url: Annotated[
        str | None, typer.Option(help="The tool's API URL, for --target cluster.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one run record per date, as a JSON list.")
    ] = False,
) -> None:
    """Run the pipeline once per date, --start to --end inclusive, each date on
    its own data partition, through the tool's own backfill mechanism.

    Every date's partition is checked before anything runs.

    Exit codes: 0 every date succeeded, 1 a date's run failed, 2 invalid
    config, dates or arguments, or a tool that cannot backfill here.
    """
    check_choices(tool, target)
    dates = backfill_dates(start, end)
    try:
        loaded = load_config(config)
    except ConfigError as err:
        fail(f"invalid config: {err}", 2)
    from shared_ml.preflight import preflight  # pandas: only the commands that read data

    for day in dates:  # a missing partition stops the backfill before any work
        try:
            preflight(loaded.for_partition(day))
        except ConfigError as err:
            fail(f"date {day}: {err}", 2)
    primary = loaded.gate.primary_metric
    reported: list[date] = []

    def progress(day: date, record: RunRecord) -> None:
        reported.append(day)
        err_console.print(
            f"[{len(reported)}/{len(dates)}] {date_line(day, record, primary)}",
            markup=False,
            highlight=False,
        )

    try:
        adapter = get_adapter(tool, target=target, url=url or default_url(tool))
        adapter.on_backfill_progress = progress
        err_console.print(f"backfilling {len(dates)} date(s), {dates[0]} to {dates[-1]}, on {tool}")
        with err_console.status(f"backfilling {loaded.name} on {tool}..."):
            records = adapter.backfill(config, dates)
    except BackfillNotSupported as err:
        fail(f"{err} (see docs/{tool}.md)", 2)
    except ConfigError as err:
        fail(f"invalid config: {err}", 2)
    except (EnvironmentMissing, CapabilityMissing) as err:
        fail(str(err) or f"{tool} has no backfill", 2)
    except Exception as err:
        if os.environ.get("ORCHBENCH_DEBUG"):
            raise
        fail(f"{tool} backfill did not complete: {type(err).__name__}: {err}", 1)
    for record in records:  # a tool that reports only at the end: its dates now
        if record.logical_date not in reported and record.logical_date is not None:
            progress(record.logical_date, record)
    if as_json:
        payload = [json.loads(r.model_dump_json()) for r in records]
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        out_console.print(backfill_table(records, primary, tool))
    got = {r.logical_date for r in records}
    missing = [d for d in dates if d not in got]
    if missing:
        err_console.print(f"[bold red]error:[/] no run record for {', '.join(map(str, missing))}")
    ok = not missing and all(r.status == "success" for r in records)
    note_services_left_running(adapter)
    raise typer.Exit(0 if ok else 1)


inspection.register_commands(app)  # runs, show, registry, logs

# Sub-commands owned by each tool's package and by the benchmark harness.
for _name, _module in (
    ("airflow", "benchmarks.tools.airflow.cli"),
    ("prefect", "benchmarks.tools.prefect.cli"),
):
    if find_spec(_module.rsplit(".", 1)[0]) is not None and find_spec(_module) is not None:
        app.add_typer(import_module(_module).app, name=_name)
if find_spec("benchmarks.harness") is not None and find_spec("benchmarks.harness.cli"):
    _harness = import_module("benchmarks.harness.cli")
    app.command("bench")(_harness.bench)
    app.command("demo")(_harness.demo)
    app.command("report")(_harness.report)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
