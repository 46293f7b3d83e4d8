"""End-to-end smoke benchmark at tiny sizes: every scenario of every tool reaches the
outputs (measured, or recorded as not supported / unavailable / error with a reason).

Runs the real adapter of each tool whose adapter module and environment exist here;
the others are skipped with the reason. No timing assertions.
"""

from __future__ import annotations

import json
import socket
from importlib import import_module
from pathlib import Path

import pytest
from rich.console import Console

from benchmarks.environments import venvs_dir
from benchmarks.harness.bench import execute
from benchmarks.harness.cli import DEMO_CONFIG
from benchmarks.harness.demo import demo_table
from benchmarks.harness.figures import SCENARIOS
from benchmarks.harness.plan import make_plan
from benchmarks.harness.results import load_results
from benchmarks.harness.setup_cost import layout
from benchmarks.tools import ADAPTERS, TOOLS, get_adapter
from tests.prerequisites import missing


def adapter_missing(tool: str) -> str | None:
    module = ADAPTERS[tool].split(":")[0]
    try:
        import_module(module)
    except ImportError as err:
        return f"the {tool} adapter is not available yet ({err})"
    python = venvs_dir() / layout(tool).venv / "bin" / "python"
    if not python.exists():
        return f"{python} missing (make envs)"
    return None


SMOKE_PROFILES = {"local": "defaults", "kubeflow": "defaults", "airflow": "tuned+preload"}


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("tool", TOOLS)
def test_smoke_benchmark(
    tool: str, orchbench_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = adapter_missing(tool)
    if reason:
        missing(reason)  # make test builds every environment first
    # A free port, not Airflow's default 8080: a user's own instance may hold that one.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setenv("ORCHBENCH_AIRFLOW_PORT", str(sock.getsockname()[1]))
    # Orchestrators run at their tuned profile here (shorter polling and parsing loops):
    # the smoke checks the outputs, and every tool's suite must stay within minutes.
    plan = make_plan(
        tools=[tool],
        scenarios=["all"],
        # Airflow at its labelled preload variant, as its own suite runs: each task
        # process then starts without re-importing the stack, which halves its CPU on 2
        # cores (the smoke checks outputs, not figures).
        profiles=[SMOKE_PROFILES.get(tool, "tuned")],
        repeat=1,
        quick=True,
        target="local",
        urls={},
        output_dir=tmp_path / "reports",
        environ={},
    )
    plan.chain_sizes = plan.fanout_sizes = (1, 10)  # sizes every tool's workloads exist for
    plan.backfill_dates = 2 if tool == "local" else 1
    plan.settle_s = 0.5
    plan.kill_after_s = 0.5
    plan.restart_delay_s = 6.0
    plan.run_timeout_s = 300.0
    plan.adhoc_cases = ("transient",)  # all four: tests/benchmarks/test_adhoc.py
    plan.throughput_runs, plan.throughput_tasks, plan.throughput_ml_runs = 2, 1, 1
    if tool != "local":
        # Each pipeline run of an orchestrator costs tens of seconds here (a minute and
        # more for KFP, whose every step is a process), and `make test` must stay under
        # 30 minutes. So its smoke runs the scenarios that reach the harness's other code
        # paths through its adapter, and leaves out those whose adapter calls the tool's
        # own suite already drives: a transient fault, resume, kill, backfill
        # (tests/<tool>/), a killed worker and a restarted scheduler (minutes each:
        # tests/prefect/test_disruption.py). The harness's code for each of those still
        # runs: in the baseline's smoke (every scenario it supports) and, for the
        # disruptions, in Airflow's server restart below.
        left_out = {
            "transient": "its adapter's run with a transient fault is tested in its own suite",
            "resume": "its adapter's resume is tested in the tool's own suite",
            "kill": "the kill fault is tested in the tool's own suite",
            "backfill": "its adapter's backfill is tested in the tool's own suite",
            "kill_worker": "minutes per tool: tests/prefect/test_disruption.py",
            "restart_scheduler": "minutes per tool: tests/prefect/test_disruption.py",
        }
        if tool == "prefect":  # restart_services: tests/prefect/test_workload.py
            left_out["restart"] = "its adapter's server restart is tested in its own suite"
        if tool == "kubeflow":  # no suite of its own kills a KFP step; no backfill to run
            del left_out["kill"], left_out["backfill"]
        # The fan-out workload left out as quick mode does, where the tool's own suite runs
        # its adapter's fan-out (tests/prefect/test_workload.py, tests/kubeflow/
        # test_local_run.py); the baseline's smoke runs the harness's fan-out path.
        if tool != "airflow":  # no other test runs Airflow's fan-out DAG
            plan.fanout_sizes = ()
        plan.scenarios = [s for s in plan.scenarios if s not in left_out]
        plan.skipped_scenarios = [*plan.skipped_scenarios, *left_out]
        for name, why in left_out.items():
            plan.skip_reasons[name] = f"left out of the smoke test: {why}"
    if tool == "local":  # orchbench demo's showcase run (the same adapter call on every tool)
        plan.demo_config = DEMO_CONFIG
    paths = execute(plan)

    results = load_results(paths["results"])  # validates against the schema
    scenario_outcomes = {
        o["scenario"]: o for o in results["outcomes"] if o["tool"] == tool and o["figure"] is None
    }
    # Every scenario, plus the first (warm-up) run that precedes the pipeline scenarios
    # (the demo's run takes the warm-up's place, where the plan has one).
    extra = {"demo"} if plan.demo_config else {"warmup"}
    assert set(scenario_outcomes) == {*SCENARIOS, *extra}, "a scenario vanished from the outputs"
    for outcome in scenario_outcomes.values():
        if outcome["status"] != "ok":
            assert outcome["reason"], f"{outcome['scenario']}: a non-ok outcome needs a reason"
    measured = {o["figure"] for o in results["observations"] if o["tool"] == tool}
    ok = {s for s, o in scenario_outcomes.items() if o["status"] == "ok"}
    if "latency" in ok:
        assert {"latency.end_to_end_s", "latency.overhead_s"} <= measured
        # memory per step, from the run record of every tool (issue 13, point 4)
        memory = [
            o
            for o in results["observations"]
            if o["tool"] == tool and o["figure"] == "latency.step_peak_rss_mb"
        ]
        assert {o["params"]["step"] for o in memory} >= {"ingest", "validate", "score"}
        assert all(o["value"] > 0 for o in memory)
    if "scaling" in ok:
        assert any(f["tool"] == tool for f in results["fits"])
    if "throughput" in ok:
        throughput = {"runs_per_min", "tasks_per_s", "run_latency_s", "ml_runs_per_min"}
        assert {f"throughput.{name}" for name in throughput} <= measured
        latencies = [
            o
            for o in results["observations"]
            if o["tool"] == tool and o["figure"] == "throughput.run_latency_s"
        ]
        assert len(latencies) == plan.throughput_runs  # one per run started at once
    if tool == "local":
        # The baseline can do everything but restart or kill a worker (it has no services
        # and no worker); it says so.
        unsupported = {"restart", "restart_scheduler", "kill_worker"}
        assert ok == {*SCENARIOS, *extra} - unsupported, json.dumps(scenario_outcomes, indent=1)
        assert {scenario_outcomes[s]["status"] for s in unsupported} == {"not_supported"}
        counted = {"transient", "resume", "kill", "backfill"}
        assert {f"recovery.{s}_duplicates" for s in counted} <= measured
        # Two dates backfilled with no fault: each date's tasks are new work, not repeats.
        backfill_duplicates = [
            o["value"]
            for o in results["observations"]
            if o["tool"] == tool and o["figure"] == "recovery.backfill_duplicates"
        ]
        assert backfill_duplicates == [0]
        assert {"setup.authoring_lines", "setup.import_s", "setup.venv_size_mb"} <= measured
        runners = {(row["case"], row["runner"]) for row in results["adhoc_comparison"]}
        assert runners == {("transient", "script"), ("transient", "pipeline")}
        demo = results["tools"]["local"]["demo_run"]
        # default.yaml's three candidates ran, in a storage folder of the benchmark's own
        assert demo["status"] == "success" and demo["selected_candidate"], demo
        demo_runs = plan.output_dir.glob(f"*/work/runs/*/demo/runs/{demo['run_id']}/run.json")
        record = json.loads(next(demo_runs).read_text(encoding="utf-8"))
        branches = {s["branch"] for s in record["steps"] if s["step"] == "train"}
        assert len(branches) == 3, branches
        assert record["prediction_hash"] == demo["prediction_hash"]
        rendered = Console(record=True, width=200)
        rendered.print(demo_table(results["tools"], ["local"]))
        assert f"{demo['prediction_hash'][:12]} (equal)" in rendered.export_text()
    else:
        assert scenario_outcomes["adhoc"]["status"] == "not_applicable"
    markdown = paths["markdown"].read_text(encoding="utf-8")
    html = paths["html"].read_text(encoding="utf-8")
    for scenario in plan.scenarios:  # every scenario that ran has its section
        assert SCENARIOS[scenario] in markdown and scenario in html
    assert tool in markdown
    assert ("The same pipeline on every tool" in markdown) == (plan.demo_config is not None)
    # Each figure's execution path and database are recorded and printed (issue 14):
    # Prefect's is its deployment and worker, never the in-process flow.
    [(profile, path)] = results["tools"][tool]["execution_paths"].items()
    assert path["execution_path"] == get_adapter(tool, profile=profile).execution_path
    assert f"| {tool} | {profile} | {path['execution_path']} | {path['database']} |" in markdown
    if tool == "prefect":
        assert "worker" in path["execution_path"]
