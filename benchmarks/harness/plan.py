"""What one benchmark invocation measures: tools, scenarios, profiles, sizes, repetitions."""

from __future__ import annotations

import os
import random
import secrets
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from benchmarks.environments import REPO_ROOT
from benchmarks.harness.figures import RECOVERY_SCENARIOS, SCENARIOS

# --target cluster: the URL of each tool's API comes from an option or URL_ENV's variables.
from benchmarks.tools import TOOLS, URL_ENV
from benchmarks.tools.profiles import DEFAULTS, default_profiles, profiles_file, profiles_of

# Every tool's profiles (benchmarks/tools/*/profiles.yaml): what --profiles accepts, and
# what runs by default (all but the labelled variants, such as Airflow's tuned+preload).
PROFILES = tuple(dict.fromkeys(p for tool in TOOLS for p in profiles_of(tool)))
DEFAULT_PROFILES = tuple(dict.fromkeys(p for tool in TOOLS for p in default_profiles(tool)))
DEFAULT_PIPELINE_CONFIG = REPO_ROOT / "configs" / "bench-pipeline.yaml"
# The plan's input files. A checkpoint and results.json record them relative to the
# repository when they are inside it, so a benchmark resumes in any checkout of the same
# revision, and a committed report names no machine's folder.
CONFIG_PATH_FIELDS = (
    "pipeline_config",
    "backfill_config",
    "backfill_data",
    "adhoc_config",
    "adhoc_daily_config",
    "demo_config",
)


def repo_relative(path: Path) -> str:
    """``path`` relative to the repository when it is inside it, else as it is."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# The tools that keep a metadata database run once per database of the plan: as shipped
# (SQLite) under the tool's own name, on PostgreSQL as "<tool>+postgres" (each its own
# column, so no figure mixes two databases). The other tools keep none.
DATABASE_TOOLS = ("airflow", "prefect")
DATABASES = ("sqlite", "postgres")
POSTGRES_SUFFIX = "+postgres"


def base_tool(label: str) -> str:
    """``airflow+postgres`` -> ``airflow``: the adapter, environment and profiles behind a
    session's tool label."""
    return label.removesuffix(POSTGRES_SUFFIX)


def database_of(label: str) -> str | None:
    """The metadata database a tool label runs on (None: the tool keeps none)."""
    if label.endswith(POSTGRES_SUFFIX):
        return "postgres"
    return "sqlite" if label in DATABASE_TOOLS else None


class PlanError(ValueError):
    """An invalid combination of options; the message names the option."""


@dataclass
class Plan:
    tools: list[str]
    scenarios: list[str]
    profiles: list[str]
    repeat: int
    quick: bool
    target: str
    urls: dict[str, str | None]
    output_dir: Path
    pipeline_config: Path = DEFAULT_PIPELINE_CONFIG
    chain_sizes: tuple[int, ...] = (1, 10, 50)
    fanout_sizes: tuple[int, ...] = (1, 10, 50)
    # The backfill: K dates of the daily partitioned config, each date reading one of
    # the bundled partitions (benchmarks.harness.scenarios_recovery._backfill_config).
    # 20, as issue 14 asks: the steady state is read from the 17 runs after the first 3.
    # It is about half of an Airflow session at defaults (15 of 31 min on 2 cores).
    backfill_dates: int = 20
    backfill_config: Path = REPO_ROOT / "configs" / "daily.yaml"
    backfill_data: Path = REPO_ROOT / "configs" / "data" / "daily"
    # The tools keep their history across benchmark runs (Airflow's and Prefect's
    # databases) and answer a backfill of dates they already ran from it (idempotency):
    # each plan backfills from its own randomly drawn origin, so the runs are real.
    backfill_origin: date = field(default_factory=lambda: fresh_backfill_origin())
    # The throughput scenario: N workload runs of a T-task chain at once, then M ML runs.
    throughput_runs: int = 10
    throughput_tasks: int = 10
    throughput_ml_runs: int = 3
    settle_s: float = 10.0
    # Before each session, wait at most this long for the CPU to be quiet (the previous
    # session's teardown; machine.wait_until_quiet). 0 in quick mode: nothing to compare.
    quiet_wait_s: float = 120.0
    kill_after_s: float = 1.0
    restart_delay_s: float = 12.0
    run_timeout_s: float = 900.0
    # After a worker kill or a restart, how long to wait for the run's terminal state:
    # longer than Airflow's default task heartbeat timeout (300 s), after which it retries.
    disruption_timeout_s: float = 400.0
    measure_install: bool = True
    # Scenarios left out (quick mode): recorded per tool as "skipped", never silently.
    skipped_scenarios: list[str] = field(default_factory=list)
    skip_reasons: dict[str, str] = field(default_factory=dict)  # default: quick mode's
    notes: list[str] = field(default_factory=list)
    # The "adhoc" scenario: the script and the plain runner on these configs.
    adhoc_config: Path = REPO_ROOT / "configs" / "default.yaml"
    adhoc_daily_config: Path = REPO_ROOT / "configs" / "daily.yaml"
    adhoc_kill_after_s: float = 0.3
    adhoc_cases: tuple[str, ...] = ("transient", "kill", "rerun", "backfill")
    # The order of profiles and tools is shuffled per repetition from this seed (recorded
    # in results.json), so slow drifts of a shared machine spread over all tools.
    order_seed: int = field(default_factory=lambda: secrets.randbelow(2**31))
    # `orchbench demo`: this config runs once per tool in its first session, after the
    # warm-up (benchmarks.harness.demo).
    demo_config: Path | None = None
    # The metadata databases Airflow and Prefect run on (DATABASE_TOOLS); each session
    # starts from a fresh one (a new home, see runner.run_session).
    databases: list[str] = field(default_factory=lambda: ["sqlite"])
    # With PostgreSQL in the plan too, SQLite runs as shipped only (the defaults profile):
    # both tools' docs call SQLite a development database, so a tuned SQLite answers no
    # production question, and leaving it out saves about a fifth of a full benchmark.
    # The profiles are compared on PostgreSQL. `--tune-sqlite` runs them on SQLite too.
    tune_sqlite: bool = False
    database_state: str = (
        "fresh: every Airflow and Prefect session starts from a new home with an empty, "
        "newly migrated metadata database (local target)"
    )

    def profiles_for(self, tool: str) -> list[str]:
        """The profiles ``tool`` (or a tool label such as ``airflow+postgres``) runs: those
        asked for that it has. A tool with none of them (no knob to tune) runs at its
        defaults, which are its only settings."""
        asked = [p for p in self.profiles if p in profiles_of(base_tool(tool))] or [DEFAULTS]
        if self.sqlite_as_shipped_only(tool) and DEFAULTS in asked:
            return [DEFAULTS]
        return asked

    def sqlite_as_shipped_only(self, tool: str) -> bool:
        """Whether ``tool`` (a label) is a SQLite session that runs its defaults only
        (see ``tune_sqlite``)."""
        return (
            not self.tune_sqlite and database_of(tool) == "sqlite" and "postgres" in self.databases
        )

    def tool_labels(self) -> list[str]:
        """Every tool of the plan once per database it runs on (see DATABASE_TOOLS)."""
        labels = []
        for tool in self.tools:
            if tool not in DATABASE_TOOLS:
                labels.append(tool)
                continue
            labels += [tool if db == "sqlite" else tool + POSTGRES_SUFFIX for db in self.databases]
        return labels

    def session_profiles(self) -> list[str]:
        """Every profile some tool runs: the asked ones, plus defaults for a tool that
        has none of them."""
        return list(
            dict.fromkeys(p for label in self.tool_labels() for p in self.profiles_for(label))
        )

    def profile_number(self, profile: str) -> int:
        """A fixed number per profile of this plan (for per-profile fresh dates)."""
        return list(dict.fromkeys([*self.profiles, *self.session_profiles()])).index(profile)

    def describe(self) -> dict[str, Any]:
        data = asdict(self)
        data["tool_profiles"] = {tool: self.profiles_for(tool) for tool in self.tools}
        data["tool_labels"] = {label: database_of(label) for label in self.tool_labels()}
        data["output_dir"] = str(self.output_dir)
        data["backfill_origin"] = self.backfill_origin.isoformat()
        for name in CONFIG_PATH_FIELDS:
            path = getattr(self, name)
            data[name] = repo_relative(path) if path is not None else None
        data["session_order"] = [list(s) for s in session_order(self)]
        return data


def session_order(plan: Plan) -> list[tuple[int, str, str]]:
    """``(repetition, profile, tool label)`` in the order the sessions run: per repetition
    the profiles in a shuffled order, and within each the tool labels (a tool once per
    database, ``Plan.tool_labels``) shuffled (``plan.order_seed``) that run that profile
    (``Plan.profiles_for``)."""
    rng = random.Random(plan.order_seed)
    order = []
    labels = plan.tool_labels()
    for repetition in range(plan.repeat):
        profiles = plan.session_profiles()
        for profile in rng.sample(profiles, len(profiles)):
            order += [
                (repetition, profile, label)
                for label in rng.sample(labels, len(labels))
                if profile in plan.profiles_for(label)
            ]
    return order


def fresh_backfill_origin() -> date:
    """A date in 2000-2019: old enough to be history, drawn from about 7,000 days so that
    two benchmark runs practically never backfill the same dates."""
    return date(2000, 1, 1) + timedelta(days=secrets.randbelow(7_000))


def parse_list(values: list[str] | None, allowed: tuple[str, ...], option: str) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``, checked against ``allowed``; order kept."""
    items: list[str] = []
    for value in values or []:
        items += [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown:
        raise PlanError(f"{option} {', '.join(unknown)}: expected some of {', '.join(allowed)}")
    return list(dict.fromkeys(items))


# Quick mode leaves out the scenarios that take minutes per tool at defaults (a backfill
# of several dates, a failed run plus its resume, a restart); they are recorded as skipped.
# The transient fault too: one more ML run per tool (about 1 min each on Airflow and KFP
# here) kept `make demo` over its 8 minutes; the tools' suites test each retry for real.
QUICK_SCENARIOS = ("setup", "latency", "scaling")


def expand_scenarios(values: list[str] | None, default: tuple[str, ...] = ("all",)) -> list[str]:
    """Scenario names; ``recovery`` stands for every recovery scenario (RECOVERY_SCENARIOS)."""
    allowed = (*SCENARIOS, "recovery", "all")
    chosen = parse_list(values, allowed, "--scenarios") or list(default)
    expanded: list[str] = []
    for name in chosen:
        if name == "all":
            expanded += list(SCENARIOS)
        elif name == "recovery":
            expanded += list(RECOVERY_SCENARIOS)
        else:
            expanded.append(name)
    return [s for s in SCENARIOS if s in expanded]  # canonical order


def resolve_urls(
    tools: list[str],
    target: str,
    given: dict[str, str | None],
    environ: dict[str, str] | None = None,
) -> dict[str, str | None]:
    """Per tool, the API URL passed to its adapter as ``url=``. ``--target cluster``
    needs one for every orchestrator (option, else environment variable)."""
    environ = dict(os.environ if environ is None else environ)
    if target not in ("local", "cluster"):
        raise PlanError(f"--target {target!r}: expected local or cluster")
    urls: dict[str, str | None] = {}
    for tool in tools:
        url = given.get(tool) or environ.get(URL_ENV.get(tool, ""), "") or None
        if url and not url.startswith(("http://", "https://")):
            source = f"--{tool}-url" if given.get(tool) else f"${URL_ENV[tool]}"
            raise PlanError(f"{source} {url!r}: expected an http:// or https:// URL")
        if target == "cluster" and tool in URL_ENV and not url:
            raise PlanError(
                f"--target cluster needs the {tool} API URL: pass --{tool}-url or set "
                f"{URL_ENV[tool]}"
            )
        urls[tool] = url if target == "cluster" or url else None
    return urls


def make_plan(
    *,
    tools: list[str] | None,
    scenarios: list[str] | None,
    profiles: list[str] | None,
    repeat: int | None,
    quick: bool,
    target: str,
    urls: dict[str, str | None],
    output_dir: Path,
    pipeline_config: Path | None = None,
    environ: dict[str, str] | None = None,
    databases: list[str] | None = None,
    tune_sqlite: bool = False,
) -> Plan:
    chosen_tools = parse_list(tools, TOOLS, "--tools") or list(TOOLS)
    if target == "cluster":
        # A tool with no cluster API (the plain-Python baseline) runs on this machine
        # whatever the target: in a cluster report its figures would pass for a cluster's.
        local_only = [t for t in chosen_tools if t not in URL_ENV]
        if tools and local_only:
            raise PlanError(
                f"--tools {', '.join(local_only)} with --target cluster: it runs on this "
                "machine, not on a cluster; benchmark it with --target local"
            )
        chosen_tools = [t for t in chosen_tools if t in URL_ENV]
    if repeat is not None and repeat < 1:
        raise PlanError(f"--repeat {repeat}: expected at least 1")
    config = pipeline_config or DEFAULT_PIPELINE_CONFIG
    if not config.is_file():
        raise PlanError(f"--config {config}: file not found")
    plan = Plan(
        tools=chosen_tools,
        scenarios=expand_scenarios(scenarios, QUICK_SCENARIOS if quick else ("all",)),
        profiles=parse_list(profiles, PROFILES, "--profiles")
        or ([DEFAULTS] if quick else list(DEFAULT_PROFILES)),
        # 5: the fewest for a bootstrap interval of the median that can separate tools
        repeat=repeat or (1 if quick else 5),
        quick=quick,
        target=target,
        urls=resolve_urls(chosen_tools, target, urls, environ),
        output_dir=output_dir,
        pipeline_config=config,
        # Both databases in a full benchmark; quick mode keeps the shipped one (SQLite).
        databases=parse_list(databases, DATABASES, "--db")
        or (["sqlite"] if quick else list(DATABASES)),
        tune_sqlite=tune_sqlite,
        quiet_wait_s=0.0 if quick else 120.0,
    )
    if target == "cluster" and plan.databases != ["sqlite"]:
        if databases:
            raise PlanError(
                "--db applies to the local services only: on --target cluster each tool "
                "uses the database its Helm release deploys"
            )
        # One session per tool, under its own name; the database its release deploys is
        # recorded per tool (execution_paths), read from the adapter.
        plan.databases = ["sqlite"]
    as_shipped = [t for t in plan.tool_labels() if plan.sqlite_as_shipped_only(t)]
    untuned = [p for p in plan.profiles if p != DEFAULTS]
    if as_shipped and untuned and DEFAULTS in plan.profiles:
        plan.notes.append(
            f"{', '.join(as_shipped)} on SQLite run as shipped ({DEFAULTS}) only; "
            f"{', '.join(untuned)} run on PostgreSQL (--tune-sqlite runs them on SQLite too)"
        )
    # A tool without a profile that was asked for runs its defaults instead: say so.
    for tool in plan.tools:
        missing = [p for p in plan.profiles if p not in profiles_of(tool)]
        if missing:
            where = profiles_file(tool).relative_to(REPO_ROOT)
            plan.notes.append(
                f"{tool} has no profile {', '.join(missing)} ({where}): it runs at "
                f"{', '.join(plan.profiles_for(tool))} only"
            )
    if quick and not scenarios:
        plan.skipped_scenarios = [s for s in SCENARIOS if s not in plan.scenarios]
    if quick:
        # Small enough for `make demo` (all four tools) to take under 8 minutes on 2 cores.
        # Two sizes fit a line; 1 and 10 are sizes every tool's workload pipelines are
        # built for (Airflow's workload DAGs are static: 1, 10, 50). The fan-out is left
        # out: with it, quick mode took 12.8 min here instead of about 10.
        plan.chain_sizes = (1, 10)
        plan.fanout_sizes = ()
        plan.backfill_dates = 3
        plan.settle_s = 3.0
        plan.restart_delay_s = 10.0
        plan.measure_install = False
        plan.notes.append(
            f"quick mode: {'/'.join(plan.profiles)} profile(s), {plan.repeat} repetition(s), "
            f"chain sizes {', '.join(map(str, plan.chain_sizes))} (no fan-out), "
            f"{plan.settle_s:.0f} s idle settle, install time not measured"
        )
        left_out = ", ".join(plan.skipped_scenarios) or "none"
        plan.notes.append(
            f"quick mode leaves out: the scenarios {left_out}; Airflow and Prefect on "
            f"{'/'.join(d for d in DATABASES if d not in plan.databases) or 'no other database'}; "
            "intervals (one repetition has none), so it names no winner. Run `orchbench "
            "bench` for the full comparison."
        )
    return plan
