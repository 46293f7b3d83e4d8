"""The flow against a real server: its graph is the spec's (mapped branches included), its
branches run at the same time by Prefect's own clock, its numbers are the plain runner's,
`orchbench run --tool prefect --json` prints the run record, and the run's candidates and
selected model are Prefect artifacts read back through the API. The run is the session's
clean run (`cli_run`, conftest)."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

import pytest

from benchmarks.tools.prefect.client import PrefectClient, parse_time
from benchmarks.tools.prefect.task_runs import branch_intervals, task_graph_of
from shared_ml.concurrency import task_concurrency
from shared_ml.config import load_config
from shared_ml.records import RunRecord
from shared_ml.runner import run_pipeline
from shared_ml.spec import PIPELINE


@pytest.fixture(scope="module")
def task_runs(cli_run: RunRecord, client: PrefectClient) -> list[dict]:
    """The run's task runs as the Prefect API reports them."""
    return client.read_task_runs(cli_run.tool_details["flow_run_id"])


def test_cli_prints_a_successful_prefect_run_record(
    cli_run: RunRecord, config_path: Path, client: PrefectClient
) -> None:
    candidates = load_config(config_path).candidate_names
    expected = PIPELINE.expand(candidates)
    assert cli_run.tool == "prefect"
    assert cli_run.status == "success"
    assert sorted(s.key for s in cli_run.steps) == sorted(expected)
    assert all(s.outcome == "success" and s.attempt == 1 for s in cli_run.steps)
    assert {s.branch for s in cli_run.steps if s.step == "train"} == set(candidates)
    assert cli_run.tool_details["flow_run_state"]["type"] == "COMPLETED"
    timings = {t["name"]: t for t in cli_run.tool_details["task_runs"]}
    assert set(timings) == set(expected)
    assert all(t["start_time"] and t["end_time"] and t["run_count"] == 1 for t in timings.values())
    # A manual run stands for the day its flow run was scheduled (created): today.
    flow_run = client.read_flow_run(cli_run.tool_details["flow_run_id"])
    scheduled_day = parse_time(flow_run["expected_start_time"]).astimezone(UTC).date()
    assert cli_run.logical_date == scheduled_day
    assert cli_run.data_interval is not None
    assert cli_run.data_interval[0].date() == scheduled_day


def test_flow_graph_from_the_real_run_equals_the_spec(
    task_runs: list[dict], config_path: Path
) -> None:
    """task key -> upstream task keys, from each task run's `task_inputs`."""
    expected = PIPELINE.expand(load_config(config_path).candidate_names)
    assert task_graph_of(task_runs) == expected


def test_candidate_branches_overlap_in_prefect_task_run_times(
    task_runs: list[dict], config_path: Path
) -> None:
    """Every branch (train[c] start -> evaluate[c] end, Prefect's own timestamps) started
    before any branch ended: at one moment all of them were running."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from pipelines.prefect.pipeline import TASK_THREADS, ml_pipeline

    candidates = load_config(config_path).candidate_names
    # The tools' equal task concurrency (4) is fewer threads than the run has tasks:
    # the branches still overlap, as submitted tasks are served in dependency order.
    assert ml_pipeline.task_runner == ThreadPoolTaskRunner(max_workers=TASK_THREADS)
    assert TASK_THREADS == task_concurrency() < len(PIPELINE.expand(candidates))
    intervals = branch_intervals(task_runs)
    assert set(intervals) == set(candidates)
    latest_start = max(start for start, _ in intervals.values())
    earliest_end = min(end for _, end in intervals.values())
    assert latest_start < earliest_end, intervals


def test_selection_metrics_and_prediction_hash_equal_the_plain_runner(
    cli_run: RunRecord, config_path: Path, tmp_path: Path
) -> None:
    config = load_config(config_path)
    private = config.storage.model_copy(
        update={
            "artifact_root": str(tmp_path / "artifacts"),
            "registry_root": str(tmp_path / "registry"),
            "runs_root": str(tmp_path / "runs"),
        }
    )
    baseline = run_pipeline(
        config.model_copy(update={"storage": private}),
        run_id="local-baseline",
        logical_date=cli_run.logical_date,
    )
    assert baseline.status == "success"
    assert cli_run.selected_candidate == baseline.selected_candidate
    assert cli_run.metrics == baseline.metrics
    assert cli_run.prediction_hash == baseline.prediction_hash
    assert cli_run.candidates == baseline.candidates
    assert cli_run.config_fingerprint == baseline.config_fingerprint


def test_tasks_take_retries_and_backoff_from_the_spec() -> None:
    from pipelines.prefect.tasks import STEP_TASKS, retry_delays

    for name, task in STEP_TASKS.items():
        policy = PIPELINE.step(name).retry
        assert task.retries == policy.max_retries, name
        assert task.retry_delay_seconds == retry_delays(policy), name
    assert retry_delays(PIPELINE.step("ingest").retry) == [1.0, 2.0, 4.0]


def test_the_run_record_is_written_where_the_baseline_writes_it(
    cli_run: RunRecord, config_path: Path
) -> None:
    runs_root = Path(load_config(config_path).storage.runs_root)
    written = json.loads((runs_root / cli_run.run_id / "run.json").read_text())
    assert written["tool"] == "prefect"
    assert written["prediction_hash"] == cli_run.prediction_hash
    assert written["logical_date"] == cli_run.logical_date.isoformat()


def test_cache_key_tells_branches_and_dates_apart_but_not_faults(daily_config_path: Path) -> None:
    """The resume cache: one key per (run id, date, branch, upstream results); the injected
    faults are left out, so a re-run without them hits what succeeded."""
    from types import SimpleNamespace

    from pipelines.prefect.tasks import STEP_CACHE_POLICY, train

    config = load_config(daily_config_path)

    def key(day: str, candidate: str, faults: str = "{}") -> str | None:
        inputs = {
            "config_json": config.for_partition(day).model_dump_json(exclude={"faults"}),
            "faults_json": faults,
            "run_id": "r",
            "candidate": candidate,
            "preprocess": {"outputs": {"train_set": "uri"}, "metadata": {}},
        }
        task_ctx = SimpleNamespace(task=train)
        return STEP_CACHE_POLICY.compute_key(task_ctx=task_ctx, inputs=inputs, flow_parameters={})

    logreg, forest = config.candidate_names[:2]
    assert key("2026-01-03", logreg) != key("2026-01-03", forest)
    assert key("2026-01-03", logreg) != key("2026-01-04", logreg)
    assert key("2026-01-03", logreg) == key("2026-01-03", logreg, '{"train": {"delay_s": 1}}')


def test_the_run_publishes_its_candidates_and_model_as_prefect_artifacts(
    cli_run: RunRecord, client: PrefectClient
) -> None:
    """A table (every candidate's rank and metrics, the selected one marked) and a markdown
    page (the selected model's file and its registration), read back through
    `POST /api/artifacts/filter` by the run's flow run."""
    artifacts = {a["key"]: a for a in client.read_artifacts(cli_run.tool_details["flow_run_id"])}
    assert set(artifacts) == {"orchbench-ml-candidates", "orchbench-ml-model"}

    table = artifacts["orchbench-ml-candidates"]
    assert table["type"] == "table"
    rows = table["data"] if isinstance(table["data"], list) else json.loads(table["data"])
    assert [r["candidate"] for r in rows] == [c["candidate"] for c in cli_run.candidates]
    for row, candidate in zip(rows, cli_run.candidates, strict=True):
        assert row["rank"] == candidate["rank"]
        assert row["gate_passed"] == candidate["gate_passed"]
        assert {m: row[m] for m in ("f1", "roc_auc", "accuracy")} == {
            m: candidate[m] for m in ("f1", "roc_auc", "accuracy")
        }
    assert [r["candidate"] for r in rows if r["selected"]] == [cli_run.selected_candidate]

    model = artifacts["orchbench-ml-model"]
    assert model["type"] == "markdown"
    [select] = [s for s in cli_run.steps if s.step == "select" and s.outcome == "success"]
    [register] = [s for s in cli_run.steps if s.step == "register" and s.outcome == "success"]
    assert f"**{cli_run.selected_candidate}**" in model["data"]
    assert f"`{select.outputs['model']}`" in model["data"]
    assert Path(select.outputs["model"].removeprefix("file://")).is_file()
    assert f"version {cli_run.registry['version']}" in model["data"]
    assert f"`{register.outputs['registry_entry']}`" in model["data"]
    assert cli_run.prediction_hash in model["data"]
