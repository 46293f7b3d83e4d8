"""``orchbench``: run the pipeline on any tool, manage local services, benchmark, report."""

from __future__ import annotations

import json
import os
import sys
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from benchmarks.environments import EnvironmentMissing
from benchmarks.tools import TOOLS, default_url, get_adapter
from shared_ml.config import load_config
from shared_ml.errors import ConfigError
from shared_ml.preflight import preflight
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
    err_console.print(f"[bold red]error:[/] {message}")
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


def print_record(record: RunRecord) -> None:
    table = Table(title=f"{record.tool} run {record.run_id}: {record.status}")
    for column in ("step", "attempt", "outcome", "seconds", "peak RSS MB", "error"):
        table.add_column(column)
    for s in record.steps:
        table.add_row(
            s.step,
            str(s.attempt),
            s.outcome,
            f"{s.duration_s:.3f}" if s.duration_s is not None else "-",
            f"{s.peak_rss_mb:.0f}" if s.peak_rss_mb else "-",
            (s.error.message[:60] if s.error else ""),
        )
    out_console.print(table)
    if record.metrics:
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in record.metrics.items())
        out_console.print(f"metrics: {metrics}")
        out_console.print(f"prediction hash: {record.prediction_hash}")
    if record.registry:
        out_console.print(
            f"registry: version {record.registry.get('version')}, "
            f"promoted={record.registry.get('promoted')} ({record.registry.get('reason')})"
        )


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
) -> None:
    """Run the ML pipeline end to end on one tool and print its run record.

    Exit codes: 0 success, 1 the pipeline failed, 2 invalid config or arguments.
    """
    if tool not in TOOLS:
        fail(f"--tool {tool!r}: expected one of {', '.join(TOOLS)}", 2)
    if target not in ("local", "cluster"):
        fail(f"--target {target!r}: expected local or cluster", 2)
    faults = _parse_faults(fault)
    try:
        loaded = load_config(config, seed=seed)
        if faults:
            loaded = loaded.with_overrides(faults={**loaded.faults, **faults})
        preflight(loaded)
    except ConfigError as err:
        fail(f"invalid config: {err}", 2)
    try:
        adapter = get_adapter(tool, target=target, url=url or default_url(tool))
        with err_console.status(f"running {loaded.name} on {tool}..."):
            record = adapter.run_pipeline(config, seed=seed, run_id=run_id, faults=faults)
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
        print_record(record)
        out_console.print(f"artifacts: {loaded.storage.artifact_root}")
        out_console.print(
            f"run record: {Path(loaded.storage.runs_root) / record.run_id / 'run.json'}"
        )
    raise typer.Exit(0 if record.status == "success" else 1)


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
