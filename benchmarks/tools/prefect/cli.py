"""``orchbench prefect up|down|status``: the local Prefect server and process worker;
``orchbench prefect deploy --url``: the deployments on a cluster's server.

``up`` starts ``prefect server start`` on 127.0.0.1 (SQLite in the Prefect home; with
``--db postgres`` a PostgreSQL it starts first, data in <home>/postgres; or the
``--database-url`` given), waits for ``/api/health``, registers the work pool and the
``orchbench-ml`` deployment, starts ``prefect worker start --pool ... --type process`` and
waits until the worker is online, then prints the UI's URL (the server serves it; the
local server has no login). ``down`` stops them (SIGTERM to each process group, then
SIGKILL after a grace period). Profiles: ``defaults`` (Prefect's poll intervals) and
``tuned`` (1 s worker query / prefetch / runner poll). ``deploy`` registers (or updates)
both deployments on a cluster's Kubernetes work pool, as ``orchbench run --target cluster``
does by itself when they are missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from benchmarks.environments import EnvironmentMissing
from benchmarks.services.postgres import DATABASES
from benchmarks.tools import default_url
from benchmarks.tools.prefect.cluster import DEFAULT_DEPLOY_CONFIG, register_on_cluster
from benchmarks.tools.prefect.paths import PrefectRunError
from benchmarks.tools.prefect.services import (
    DEFAULT_POOL,
    DEFAULT_PORT,
    PROFILES,
    PrefectServices,
    ServiceError,
    ui_login,
)

app = typer.Typer(
    name="prefect",
    help="Local Prefect 3 services (server + process worker); deployments on a cluster.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

HomeOption = Annotated[
    Path | None,
    typer.Option(help="Prefect home (default $ORCHBENCH_PREFECT_HOME or var/prefect)."),
]


def _fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


@app.command()
def up(
    home: HomeOption = None,
    port: Annotated[
        int | None, typer.Option(help=f"Server port on 127.0.0.1 (default {DEFAULT_PORT} if free).")
    ] = None,
    profile: Annotated[str, typer.Option(help="defaults or tuned (poll intervals).")] = "defaults",
    db: Annotated[
        str,
        typer.Option(
            "--db",
            help="Server database: sqlite (as shipped, a file in the Prefect home) or postgres "
            "(a PostgreSQL started and stopped with the services, data in <home>/postgres).",
        ),
    ] = "sqlite",
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL of a database run elsewhere instead, e.g. "
            "postgresql+asyncpg://u:p@host/db."
        ),
    ] = None,
    pool: Annotated[str, typer.Option(help="Process work pool name.")] = DEFAULT_POOL,
    worker: Annotated[bool, typer.Option(help="Start the process worker.")] = True,
    config: Annotated[
        str, typer.Option(help="Pipeline config for the deployment's default parameters.")
    ] = "configs/default.yaml",
    deploy: Annotated[
        bool, typer.Option(help="Register the work pool and the orchbench-ml deployment.")
    ] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for health.")] = 120.0,
) -> None:
    """Start the Prefect server (and worker) and wait until healthy."""
    if profile not in PROFILES:
        _fail(f"--profile {profile!r}: expected one of {', '.join(PROFILES)}")
    if db not in DATABASES:
        _fail(f"--db {db!r}: expected one of {', '.join(DATABASES)}")
    services = PrefectServices(home)
    try:
        state = services.up(
            port=port,
            profile=profile,
            database=db,  # type: ignore[arg-type]  # checked above
            database_url=database_url,
            pool=pool,
            worker=worker,
            deploy_config=config if deploy else None,
            timeout_s=timeout,
        )
    except (ServiceError, EnvironmentMissing) as err:
        _fail(str(err).splitlines()[0])
    console.print(f"Prefect server healthy at {state.url} after {state.cold_start_s:.1f} s")
    console.print(f"UI: {state.url}", soft_wrap=True)
    console.print(f"UI login: {ui_login()}", soft_wrap=True)
    console.print(
        f"profile {state.profile}; home {state.home}; database {state.database}",
        soft_wrap=True,
        markup=False,
    )
    for entry in state.processes:
        console.print(f"  {entry.name}: pid {entry.pid}, log {entry.log}")
    console.print(f"export PREFECT_API_URL={state.api_url}")
    # One unwrapped line: the command is meant to be copied.
    console.print(
        "The services keep running in the background. Stop them with: "
        f"orchbench prefect down --home {state.home}",
        soft_wrap=True,
        markup=False,
    )


@app.command()
def down(home: HomeOption = None) -> None:
    """Stop the server and worker started by `up` (no orphans)."""
    services = PrefectServices(home)
    try:
        if services.read_state() is None:
            console.print(f"no Prefect services recorded in {services.home}")
            return
        killed = services.down()
    except ServiceError as err:
        _fail(str(err))
    console.print("stopped" + (f" (SIGKILLed {killed})" if killed else ""))


@app.command()
def status(
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show whether the services run, their pids and health. Exit 0 if healthy, 1 if not."""
    try:
        info = PrefectServices(home).status()
    except ServiceError as err:
        _fail(str(err))
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    elif not info["running"]:
        console.print(f"not running (home {info['home']})")
    else:
        console.print(
            f"{'healthy' if info['healthy'] else 'UNHEALTHY'} at {info['url']} "
            f"(profile {info['profile']}, pids {info['pids']})"
        )
        console.print(f"UI: {info['url']} ({ui_login()})", soft_wrap=True)
        console.print(f"database: {info['database']}", soft_wrap=True, markup=False)
        for name, proc in info["processes"].items():
            console.print(f"  {name}: pid {proc['pid']} {'alive' if proc['alive'] else 'dead'}")
    raise typer.Exit(0 if info.get("healthy") else 1)


@app.command()
def deploy(
    url: Annotated[
        str | None,
        typer.Option(help="The cluster's Prefect API URL (default $ORCHBENCH_PREFECT_URL)."),
    ] = None,
    config: Annotated[
        Path, typer.Option(help="Pipeline config for the deployment's default parameters.")
    ] = DEFAULT_DEPLOY_CONFIG,
) -> None:
    """Register (or update) the orchbench deployments on a cluster's Kubernetes work pool."""
    url = url or default_url("prefect")
    if not url:
        _fail("--url (or $ORCHBENCH_PREFECT_URL): the cluster's Prefect API URL is needed")
    api_url = url.rstrip("/") if url.rstrip("/").endswith("/api") else url.rstrip("/") + "/api"
    try:
        summary = register_on_cluster(api_url, config)
    except (PrefectRunError, EnvironmentMissing) as err:
        _fail(str(err))
    console.print(
        f"{summary['deployment']} and {summary['workload_deployment']} on work pool "
        f"{summary['work_pool']} ({summary['work_pool_type']}) at {api_url}",
        soft_wrap=True,
        markup=False,
    )
