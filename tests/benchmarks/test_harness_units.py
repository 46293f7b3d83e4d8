"""Plan options, cluster URL wiring, line counting: the harness's small parts."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from benchmarks.cli import app
from benchmarks.harness.plan import (
    URL_ENV,
    PlanError,
    expand_scenarios,
    make_plan,
    resolve_urls,
    session_order,
)
from benchmarks.harness.setup_cost import code_lines, parse_importtime
from benchmarks.tools import TOOLS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_session_order_is_shuffled_per_repetition_and_reproducible_from_its_seed(
    tmp_path: Path,
) -> None:
    plan = make_plan(
        tools=["local", "airflow", "prefect", "kubeflow"],
        scenarios=["latency"],
        profiles=None,
        repeat=6,
        quick=False,
        target="local",
        urls={},
        output_dir=tmp_path,
    )
    plan.order_seed = 7  # fixed, so the test is deterministic
    order = session_order(plan)
    # every (repetition, profile, tool) exactly once, for the profiles each tool has:
    assert sorted(order) == sorted(
        (r, p, t)
        for r in range(6)
        for p in plan.profiles
        for t in plan.tool_labels()  # airflow and prefect once per database
        # no knob on local and kubeflow, and SQLite runs as shipped: no "tuned" session
        if t.endswith("+postgres") or p == "defaults"
    )
    assert order == session_order(plan)  # the seed alone decides it
    firsts = {order[i][2] for i in range(len(order)) if i == 0 or order[i][:2] != order[i - 1][:2]}
    plan.order_seed += 1
    assert session_order(plan) != order
    assert len(firsts) > 1  # not always the same tool first
    assert plan.describe()["session_order"] == [list(s) for s in session_order(plan)]


def test_scenario_selection() -> None:
    assert expand_scenarios(["recovery"]) == [
        "transient",
        "resume",
        "kill",
        "kill_worker",
        "backfill",
        "restart",
        "restart_scheduler",
    ]
    assert expand_scenarios(["scaling,setup"]) == ["setup", "scaling"]
    assert len(expand_scenarios(None)) == 12
    assert expand_scenarios(["adhoc"]) == ["adhoc"]
    with pytest.raises(PlanError, match="--scenarios bogus"):
        expand_scenarios(["bogus"])


def local_plan(**options: Any) -> Any:
    """A plan for the local target built the way the CLI builds one; quick unless told."""
    defaults: dict[str, Any] = {
        "tools": None,
        "scenarios": None,
        "profiles": None,
        "repeat": None,
        "quick": True,
        "target": "local",
        "urls": {},
        "output_dir": Path("reports"),
        "environ": {},
    }
    return make_plan(**{**defaults, **options})


def test_quick_plan_is_small() -> None:
    plan = local_plan()
    assert plan.tools == ["local", "airflow", "prefect", "kubeflow"]
    assert plan.profiles == ["defaults"] and plan.repeat == 1
    assert max(plan.chain_sizes) == 10 and not plan.measure_install
    assert plan.scenarios == ["setup", "latency", "scaling"]
    # Recorded as skipped; the script-vs-runner comparison is left out too (about a minute).
    assert plan.skipped_scenarios == [
        "transient",
        "resume",
        "kill",
        "kill_worker",
        "backfill",
        "restart",
        "restart_scheduler",
        "throughput",
        "adhoc",
    ]
    assert plan.fanout_sizes == ()
    full = make_plan(
        tools=["local"],
        scenarios=None,
        profiles=None,
        repeat=None,
        quick=False,
        target="local",
        urls={},
        output_dir=Path("reports"),
        environ={},
    )
    assert full.profiles == ["defaults", "tuned"] and full.chain_sizes == (1, 10, 50)
    assert full.profiles_for("local") == ["defaults"]  # no knob, so no "tuned" run
    assert any("local has no profile tuned" in note for note in full.notes)


def test_each_tool_runs_the_profiles_it_has() -> None:
    """The default plan runs Airflow's and Prefect's defaults and tuned (on PostgreSQL), not Airflow's
    labelled tuned+preload variant; asked for by name, only Airflow runs it; a tool with
    none of the asked profiles runs its defaults."""
    plan = local_plan(quick=False)
    assert plan.profiles == ["defaults", "tuned"]
    for label in ("airflow+postgres", "prefect+postgres"):
        assert plan.profiles_for(label) == ["defaults", "tuned"]
    assert plan.profiles_for("kubeflow") == ["defaults"]
    variant = local_plan(quick=False, profiles=["tuned+preload"], databases=["sqlite"])
    assert variant.profiles_for("airflow") == ["tuned+preload"]
    assert variant.profiles_for("prefect") == variant.profiles_for("local") == ["defaults"]
    assert {(p, t) for _, p, t in session_order(variant)} == {
        ("tuned+preload", "airflow"),
        ("defaults", "prefect"),
        ("defaults", "local"),
        ("defaults", "kubeflow"),
    }
    with pytest.raises(PlanError, match="--profiles fast: expected some of defaults, tuned"):
        local_plan(profiles=["fast"])


def test_cluster_urls_from_options_and_environment() -> None:
    env = {
        "ORCHBENCH_AIRFLOW_URL": "http://airflow.example:8080",
        "ORCHBENCH_KFP_URL": "https://kfp",
    }
    urls = resolve_urls(
        ["local", "airflow", "prefect", "kubeflow"],
        "cluster",
        {"prefect": "http://127.0.0.1:4200/api", "airflow": None},
        env,
    )
    assert urls == {
        "local": None,
        "airflow": "http://airflow.example:8080",
        "prefect": "http://127.0.0.1:4200/api",
        "kubeflow": "https://kfp",
    }
    # An option wins over the environment.
    assert resolve_urls(["airflow"], "cluster", {"airflow": "http://a:1"}, env) == {
        "airflow": "http://a:1"
    }


@pytest.mark.parametrize(
    ("given", "env", "message"),
    [
        ({}, {}, "needs the airflow API URL: pass --airflow-url or set ORCHBENCH_AIRFLOW_URL"),
        ({"airflow": "airflow:8080"}, {}, "--airflow-url 'airflow:8080': expected an http"),
        ({}, {"ORCHBENCH_AIRFLOW_URL": "ftp://x"}, "$ORCHBENCH_AIRFLOW_URL 'ftp://x'"),
    ],
)
def test_cluster_url_errors_are_clear(given: dict, env: dict, message: str) -> None:
    with pytest.raises(PlanError) as err:
        resolve_urls(["airflow"], "cluster", given, env)
    assert message in str(err.value)


def test_a_cluster_benchmark_leaves_out_the_baseline_that_runs_here() -> None:
    env = {var: "http://127.0.0.1:9" for var in URL_ENV.values()}
    plan = local_plan(target="cluster", environ=env)
    assert plan.tools == [t for t in TOOLS if t != "local"] and "local" not in plan.urls
    with pytest.raises(PlanError, match="--tools local with --target cluster: it runs on this"):
        local_plan(target="cluster", tools=["local", "airflow"], environ=env)


def test_cli_cluster_errors_exit_2_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ORCHBENCH_AIRFLOW_URL", "ORCHBENCH_PREFECT_URL", "ORCHBENCH_KFP_URL"):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()
    missing = runner.invoke(app, ["bench", "--target", "cluster", "--tools", "airflow"])
    assert missing.exit_code == 2
    assert "ORCHBENCH_AIRFLOW_URL" in missing.output and "Traceback" not in missing.output
    port = free_port()  # nothing listens there
    unreachable = runner.invoke(
        app,
        [
            "bench",
            "--target",
            "cluster",
            "--tools",
            "prefect",
            "--prefect-url",
            f"http://127.0.0.1:{port}",
        ],
    )
    assert unreachable.exit_code == 2
    assert f"cannot reach the prefect API at http://127.0.0.1:{port}" in unreachable.output
    bad_target = runner.invoke(app, ["bench", "--target", "moon"])
    assert bad_target.exit_code == 2 and "--target 'moon'" in bad_target.output


def local_latency_plan(output_dir: Path, target: str, environ: dict[str, str]) -> Any:
    """The plain runner's latency scenario once, at defaults: the smallest real plan."""
    return make_plan(
        tools=["local"],
        scenarios=["latency"],
        profiles=["defaults"],
        repeat=1,
        quick=True,
        target=target,
        urls={},
        output_dir=output_dir,
        environ=environ,
    )


def test_cluster_wiring_reaches_the_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reachable URL passes the check and arrives at the adapter as url=."""
    from benchmarks.harness import cli as harness_cli

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        monkeypatch.setitem(URL_ENV, "local", "ORCHBENCH_LOCAL_URL")  # treat local as remote
        plan = local_latency_plan(tmp_path, "cluster", {"ORCHBENCH_LOCAL_URL": url})
        harness_cli.check_tools_ready(plan)  # no error
        seen = {}
        from benchmarks.tools import local

        original = local.LocalAdapter.__init__

        def spy(self, *args, **kwargs):
            seen.update(kwargs)
            original(self, *args, **kwargs)

        monkeypatch.setattr(local.LocalAdapter, "__init__", spy)
        from benchmarks.harness.runner import Collected, run_session

        collected = Collected()
        plan.scenarios = []  # only construct the adapter and start/stop its services
        run_session(plan, "local", "defaults", 0, tmp_path, collected, lambda d, u: None)
        assert seen == {"target": "cluster", "url": url, "profile": "defaults"}
        assert collected.tools["local"]["url"] == url
    finally:
        server.shutdown()
        server.server_close()


def test_code_lines_skip_blanks_comments_and_docstrings() -> None:
    source = '''"""Module docstring
spanning lines."""

# a comment
import os  # trailing comment counts as code


def f(x):
    """Docstring."""
    y = (
        x + 1
    )
    return y
'''
    assert code_lines(source) == 6  # import, def, y = (, x + 1, ), return


def test_parse_importtime() -> None:
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       120 |        120 |   airflow.sub\n"
        "import time:      3000 |    1234567 | airflow\n"
    )
    assert parse_importtime(stderr, "airflow") == pytest.approx(1.234567)


def test_progress_is_printed_line_by_line_when_stderr_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmarks.harness import progress

    def fake_execute(
        plan: object, advance: Callable[[str, float], None], resume: object = None
    ) -> dict[str, Path]:
        advance("local defaults #1: latency", 1)
        advance("local defaults #1: scaling", 2)
        return {}

    monkeypatch.setattr("benchmarks.harness.bench.execute", fake_execute)
    plan = local_plan(tools=["local"], scenarios=["latency"])
    progress.run_with_progress(plan)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("[1/") and lines[0].endswith("local defaults #1: latency")
    assert lines[1].startswith("[3/") and "scaling" in lines[1]
    assert lines[-1].endswith("report written")


def test_backfill_dates_are_fresh_per_plan_profile_and_repetition(tmp_path: Path) -> None:
    from datetime import date

    from benchmarks.harness.scenarios_recovery import scenario_backfill
    from benchmarks.harness.session import Collected, Session

    class RecordingAdapter:
        def __init__(self) -> None:
            self.asked: list[list[date]] = []

        def backfill(self, config_path: Path, dates: list[date]) -> list[Any]:
            self.asked.append(dates)
            return []

    def backfilled(plan: Any, profile: str, repetition: int) -> list[date]:
        adapter = RecordingAdapter()
        session = Session(
            plan=plan,
            tool="local",
            profile=profile,
            repetition=repetition,
            adapter=adapter,  # type: ignore[arg-type]
            execution_model="in-process",
            collected=Collected(),
            work_dir=tmp_path,
        )
        scenario_backfill(session)
        return adapter.asked[0]

    plan = local_plan(
        tools=["local"],
        scenarios=["backfill"],
        profiles=["defaults", "tuned"],
        repeat=2,
        quick=False,
        output_dir=tmp_path,
    )
    plan.backfill_origin = date(2011, 3, 1)
    asked = [backfilled(plan, p, r) for p in ("defaults", "tuned") for r in (0, 1)]
    every_date = [d for dates in asked for d in dates]
    assert len(set(every_date)) == len(every_date) == 4 * plan.backfill_dates
    assert min(every_date) == date(2011, 3, 1)
    plan.backfill_origin = date(2015, 7, 9)  # another plan: other dates
    assert not set(backfilled(plan, "defaults", 0)) & set(every_date)
    assert plan.describe()["backfill_origin"] == "2015-07-09"


# --- execution paths (issue 14): which path each figure was measured on ------------------
@pytest.mark.parametrize(
    ("tool", "words", "database"),
    [
        ("local", "thread pool", "none"),
        ("airflow", "scheduler + LocalExecutor", "sqlite"),
        ("prefect", "deployment + process worker", "sqlite"),
        ("kubeflow", "SubprocessRunner (subprocess per step, not a cluster)", "none"),
    ],
)
def test_the_harness_records_each_adapters_path_and_database_per_profile(
    tool: str, words: str, database: str
) -> None:
    from benchmarks.harness.runner import _record_execution_path
    from benchmarks.tools import get_adapter

    entry: dict[str, Any] = {"profiles": {}}
    adapter = get_adapter(tool, target="local", url=None, profile="defaults")
    _record_execution_path(entry, tool, adapter, "defaults")
    recorded = entry["execution_paths"]["defaults"]
    assert words in recorded["execution_path"]
    assert recorded["execution_path"] == adapter.execution_path
    assert recorded["database"] == database


def test_prefects_in_process_path_is_its_own_label_and_never_shares_a_profile() -> None:
    from benchmarks.harness.runner import _record_execution_path
    from benchmarks.tools import get_adapter

    benchmark = get_adapter("prefect", profile="tuned")
    in_process = get_adapter("prefect", profile="tuned", path="in-process")
    assert "worker" in benchmark.execution_path
    assert in_process.execution_path.startswith("in-process flow")
    assert benchmark.execution_model == in_process.execution_model == "in-process"
    entry: dict[str, Any] = {"profiles": {}}
    _record_execution_path(entry, "prefect", benchmark, "tuned")
    with pytest.raises(ValueError, match="prefect/tuned: path changed"):
        _record_execution_path(entry, "prefect", in_process, "tuned")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tool", "prefect", "--path", "serve"], "--path 'serve' for prefect: expected one of"),
        (["--tool", "airflow", "--path", "in-process"], "airflow has one execution path"),
        (
            [
                "--tool",
                "prefect",
                "--path",
                "in-process",
                "--target",
                "cluster",
                "--url",
                "http://x",
            ],
            "with --target cluster",
        ),
    ],
)
def test_orchbench_run_path_errors_exit_2_naming_the_option(args: list[str], message: str) -> None:
    done = CliRunner().invoke(app, ["run", *args])
    assert done.exit_code == 2, done.output
    assert message in " ".join(done.output.split()) and "Traceback" not in done.output


def test_a_crash_restart_during_a_scenario_is_in_what_happened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A component the adapter restarted after a crash while a scenario ran (Airflow's
    client watchdog) becomes an "ok" note of that scenario, shown under what happened."""
    from benchmarks.harness import runner

    note = (
        "Airflow's scheduler (pid 7) exited (exit code 1); started again. Last lines of "
        "/somewhere/scheduler.log:\nTraceback (most recent call last):\n  File x\n"
        "sqlalchemy.orm.exc.StaleDataError: UPDATE on 'dag_run' matched 0 rows.\n"
        "[info] Exited execute loop"
    )

    def crashing_scenario(session: Any) -> None:
        session.adapter.crash_restarts = [note]

    monkeypatch.setitem(runner.SCENARIO_FUNCTIONS, "latency", crashing_scenario)
    monkeypatch.setattr(runner, "warm_up", lambda session: None)
    plan = local_latency_plan(tmp_path, "local", {})
    collected = runner.Collected()
    runner.run_session(plan, "local", "defaults", 0, tmp_path, collected, lambda d, u: None)
    notes = [o for o in collected.outcomes if o["scenario"] == "latency" and o["reason"]]
    assert [(o["status"], o["reason"]) for o in notes] == [
        (
            "ok",
            "restarted after a crash: Airflow's scheduler (pid 7) exited (exit code 1); "
            "started again. Its log's last error: sqlalchemy.orm.exc.StaleDataError: UPDATE "
            "on 'dag_run' matched 0 rows.",
        )
    ]
