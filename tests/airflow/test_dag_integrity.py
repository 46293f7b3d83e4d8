"""Astronomer-style DAG integrity checks: every DAG file imports, every DAG has tags and
retries, and the ML DAG's graph and retry settings are exactly the spec's. (The graph of a
real run, mapped branches included, is compared with the spec in test_pipeline_runs.)"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.definitions.taskgroup import MappedTaskGroup

from benchmarks.tools.airflow.runs import run_partition as adapter_run_partition
from pipelines.airflow.tasks import CONFIG_ENV
from pipelines.airflow.tasks import run_partition as dag_run_partition
from shared_ml.spec import PIPELINE
from tests.airflow.conftest import REPO_ROOT

DAGS_FOLDER = REPO_ROOT / "pipelines" / "airflow"


def _parse(env: dict[str, str]) -> DagBag:
    """The DAG files parsed with ``env`` set (the DAG reads its config and start date then)."""
    previous = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        return DagBag(dag_folder=DAGS_FOLDER, bundle_path=DAGS_FOLDER)
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return _parse({})


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}, "\n".join(
        f"{path}: {error}" for path, error in dagbag.import_errors.items()
    )
    assert "orchbench_ml" in dagbag.dags


def test_every_dag_has_tags_owner_and_retries(dagbag: DagBag) -> None:
    assert len(dagbag.dags) >= 7  # the ML DAG and six workload DAGs
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no docs"
        for task in dag.tasks:
            assert task.owner == "orchbench", f"{dag_id}.{task.task_id} owner {task.owner!r}"
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


def test_ml_dag_graph_equals_the_spec(dagbag: DagBag) -> None:
    dag = dagbag.dags["orchbench_ml"]
    assert set(dag.task_ids) == set(PIPELINE.step_names)
    edges = {(up, task.task_id) for task in dag.tasks for up in task.upstream_task_ids}
    assert edges == set(PIPELINE.edges)
    # The per-candidate steps are one mapped task group (expanded over preprocess's
    # candidate list at run time); every other step runs once.
    for task in dag.tasks:
        mapped = isinstance(task.task_group, MappedTaskGroup)
        assert mapped == PIPELINE.step(task.task_id).per_candidate, task.task_id
    groups = {t.task_group.group_id: t.task_group for t in dag.tasks}
    group = groups["candidate"]
    assert isinstance(group, MappedTaskGroup)
    assert {up.task_id for up in group.iter_mapped_dependencies()} == {"preprocess"}


@pytest.mark.parametrize("step", PIPELINE.step_names)
def test_ml_task_retry_settings_come_from_the_spec(dagbag: DagBag, step: str) -> None:
    task = dagbag.dags["orchbench_ml"].get_task(step)
    policy = PIPELINE.step(step).retry
    assert task.retries == policy.max_retries
    assert task.retry_delay == timedelta(seconds=policy.delay_s)
    assert task.retry_exponential_backoff == policy.backoff
    assert task.max_retry_delay == timedelta(seconds=policy.max_delay_s)
    assert task.on_failure_callback, f"{step} has no failure notifier"


def test_ml_dag_triggers_and_params(dagbag: DagBag) -> None:
    dag = dagbag.dags["orchbench_ml"]
    # No start date, catchup off: the latest complete interval runs once the scheduler
    # sees the DAG (test_triggers observes it), not every interval since some date.
    assert dag.start_date is None and dag.catchup is False
    schedule = dag.timetable  # time OR data: the config's cron, and the input asset
    assert type(schedule).__name__ == "AssetOrTimeSchedule"
    assert type(schedule.timetable).__name__ == "CronDataIntervalTimetable"
    assert schedule.timetable.expression == "0 3 * * *"  # from configs/default.yaml
    assert "orchbench_input_data" in repr(schedule.asset_condition)
    assert {"config_path", "seed", "faults"} <= set(dag.params.keys())
    assert dag.params["config_path"] == "configs/default.yaml"


def test_a_preset_schedule_is_accepted() -> None:
    bag = _parse({CONFIG_ENV: "configs/daily.yaml"})
    assert bag.import_errors == {}
    dag = bag.dags["orchbench_ml"]
    assert dag.timetable.timetable.expression == "0 0 * * *"  # "@daily", as Airflow reads it
    assert dag.params["config_path"] == "configs/daily.yaml"  # what scheduled runs run


def test_dag_and_adapter_date_runs_alike() -> None:
    """The tasks (from the DagRun) and the adapter (from the REST API) derive the same
    partition from Airflow's dates of a run."""
    logical = datetime(2026, 1, 3, 3, tzinfo=UTC)
    interval = (logical, logical + timedelta(days=1))
    run_after = datetime(2026, 1, 4, 3, 0, 5, tzinfo=UTC)
    cases = [
        (logical, *interval, run_after),
        (None, None, None, run_after),
        (logical, None, None, run_after),
    ]
    for logical_date, start, end, after in cases:
        api = {
            "logical_date": logical_date.isoformat() if logical_date else None,
            "data_interval_start": start.isoformat() if start else None,
            "data_interval_end": end.isoformat() if end else None,
            "run_after": after.isoformat(),
        }
        assert dag_run_partition(logical_date, start, end, after) == adapter_run_partition(api)
    partition = dag_run_partition(None, None, None, run_after)
    assert partition.logical_date == date(2026, 1, 4)  # a manual run: the day it ran
    assert dag_run_partition(logical, *interval, run_after).interval_start == logical


@pytest.mark.parametrize(("shape", "size"), [("chain", 10), ("fanout", 10)])
def test_workload_dags_follow_workload_graph(dagbag: DagBag, shape: str, size: int) -> None:
    from shared_ml.workloads import workload_graph

    dag = dagbag.dags[f"orchbench_{shape}_{size}"]
    graph = workload_graph(shape, size)
    assert set(dag.task_ids) == set(graph)
    for task in dag.tasks:
        assert set(task.upstream_task_ids) == set(graph[task.task_id])
