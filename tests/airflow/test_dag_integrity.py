"""Astronomer-style DAG integrity checks: every DAG file imports, every DAG has tags and
retries, and the ML DAG's graph and retry settings are exactly the spec's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from airflow.dag_processing.dagbag import DagBag

from shared_ml.spec import PIPELINE
from tests.airflow.conftest import REPO_ROOT

DAGS_FOLDER = REPO_ROOT / "pipelines" / "airflow"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=DAGS_FOLDER, bundle_path=DAGS_FOLDER)


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
    assert dag.catchup is False
    schedule = dag.timetable  # time OR data: the config's cron, and the input asset
    assert type(schedule).__name__ == "AssetOrTimeSchedule"
    assert schedule.timetable.expression == "0 3 * * *"  # from configs/default.yaml
    assert "orchbench_input_data" in repr(schedule.asset_condition)
    assert {"config_path", "seed", "faults"} <= set(dag.params.keys())


@pytest.mark.parametrize(("shape", "size"), [("chain", 10), ("fanout", 10)])
def test_workload_dags_follow_workload_graph(dagbag: DagBag, shape: str, size: int) -> None:
    from shared_ml.workloads import workload_graph

    dag = dagbag.dags[f"orchbench_{shape}_{size}"]
    graph = workload_graph(shape, size)
    assert set(dag.task_ids) == set(graph)
    for task in dag.tasks:
        assert set(task.upstream_task_ids) == set(graph[task.task_id])
