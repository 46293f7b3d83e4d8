"""Running a benchmark plan with its progress on stderr (a bar on a terminal, a line per
step of work in a log), and stopping it cleanly on Ctrl-C, SIGTERM or SIGHUP."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks.harness.plan import Plan, session_order

if TYPE_CHECKING:
    from benchmarks.harness.checkpoint import Checkpoint

err_console = Console(stderr=True)


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt while the benchmark runs. Their default
    action ends the process on the spot, skipping the ``finally`` that stops a session's
    services: a killed benchmark left its Prefect server and worker running. Interrupted
    this way, the services stop, and the sessions done so far stay in checkpoint.json."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_with_progress(plan: Plan, resume: Checkpoint | None = None) -> dict[str, Path]:
    try:
        with stop_signals_interrupt():
            return _run_with_progress_bar(plan, resume)
    except KeyboardInterrupt as err:
        err_console.print(
            f"[bold red]interrupted[/] ({err or 'Ctrl-C'}): the services were stopped; the "
            "sessions done so far are in the report folder's checkpoint.json (orchbench "
            "bench --resume <folder> goes on)",
            soft_wrap=True,
        )
        raise typer.Exit(130) from None


def _run_with_progress_bar(plan: Plan, resume: Checkpoint | None = None) -> dict[str, Path]:
    # Imported here, as in harness/cli.py: `orchbench` starts without scipy and matplotlib.
    from benchmarks.harness.bench import execute
    from benchmarks.harness.runner import session_units

    left = len(session_order(plan)) - (len(resume.done) if resume else 0)
    total = left * session_units(plan)
    if not err_console.is_terminal:
        return _run_with_progress_lines(plan, total, resume)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task("benchmark", total=total)

        def advance(description: str, units: float) -> None:
            progress.update(task, description=description, advance=units)

        paths = execute(plan, advance, resume)
        progress.update(task, completed=total, description="report written")
    return paths


def _run_with_progress_lines(
    plan: Plan, total: float, resume: Checkpoint | None = None
) -> dict[str, Path]:
    """Progress as one plain line per step of work: a redirected or CI log shows it as it
    happens (a live bar is only drawn on a terminal)."""
    from benchmarks.harness.bench import execute

    started = time.monotonic()
    done = 0.0

    def advance(description: str, units: float) -> None:
        nonlocal done
        done += units
        elapsed = int(time.monotonic() - started)
        err_console.print(
            f"[{done:.0f}/{total:.0f} {elapsed // 60}m{elapsed % 60:02d}s] {description}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    paths = execute(plan, advance, resume)
    err_console.print(f"[{total:.0f}/{total:.0f}] report written", markup=False, highlight=False)
    return paths
