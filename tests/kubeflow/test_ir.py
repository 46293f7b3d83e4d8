"""The committed IR: its graph is the spec's, it is fresh, deterministic, pinned and install-free."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.kubeflow.compile import IR_PATH, compile_ir
from pipelines.kubeflow.compile import main as compile_main
from pipelines.kubeflow.components import SHARED_ML_IMAGE
from pipelines.kubeflow.pipeline import duration
from shared_ml.spec import PIPELINE

REPO_ROOT = Path(__file__).resolve().parents[2]
EXIT_STRATEGY = "ALL_UPSTREAM_TASKS_COMPLETED"


@pytest.fixture(scope="module")
def ir() -> dict[str, Any]:
    return yaml.safe_load(IR_PATH.read_text(encoding="utf-8"))


def is_exit_task(task: dict[str, Any]) -> bool:
    params = task.get("inputs", {}).get("parameters", {}).values()
    return task.get("triggerPolicy", {}).get("strategy") == EXIT_STRATEGY and any(
        "taskFinalStatus" in p for p in params
    )


def container_tasks(ir: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every task that runs a container, found by walking into nested DAGs (the ExitHandler
    body is one), minus exit-handler tasks."""
    found: dict[str, dict[str, Any]] = {}

    def walk(dag: dict[str, Any]) -> None:
        for name, task in dag.get("tasks", {}).items():
            component = ir["components"][task["componentRef"]["name"]]
            if "dag" in component:
                walk(component["dag"])
            elif not is_exit_task(task):
                found[name] = task

    walk(ir["root"]["dag"])
    return found


def test_graph_read_back_from_the_ir_equals_the_spec(ir: dict[str, Any]) -> None:
    tasks = container_tasks(ir)
    assert set(tasks) == set(PIPELINE.step_names)
    edges = set()
    for name, task in tasks.items():
        edges |= {(upstream, name) for upstream in task.get("dependentTasks", [])}
        for artifact in task.get("inputs", {}).get("artifacts", {}).values():
            edges.add((artifact["taskOutputArtifact"]["producerTask"], name))
    assert edges == set(PIPELINE.edges)


def test_each_step_consumes_exactly_the_spec_inputs(ir: dict[str, Any]) -> None:
    for name, task in container_tasks(ir).items():
        artifacts = task.get("inputs", {}).get("artifacts", {})
        consumed = {
            param: f"{a['taskOutputArtifact']['producerTask']}."
            f"{a['taskOutputArtifact']['outputArtifactKey']}"
            for param, a in artifacts.items()
        }
        assert consumed == PIPELINE.step(name).inputs, name
        outputs = ir["components"][task["componentRef"]["name"]]["outputDefinitions"]
        assert set(outputs["artifacts"]) == set(PIPELINE.step(name).outputs), name


def test_artifacts_are_typed(ir: dict[str, Any]) -> None:
    def output_type(step: str, output: str) -> str:
        component = ir["components"][f"comp-{step}"]
        return component["outputDefinitions"]["artifacts"][output]["artifactType"]["schemaTitle"]

    assert output_type("ingest", "dataset") == "system.Dataset"
    assert output_type("preprocess", "train_set") == "system.Dataset"
    assert output_type("preprocess", "transformer") == "system.Model"
    assert output_type("train", "model") == "system.Model"
    assert output_type("evaluate", "metrics") == "system.Metrics"


def test_retry_policies_come_from_the_spec(ir: dict[str, Any]) -> None:
    for name, task in container_tasks(ir).items():
        policy = PIPELINE.step(name).retry
        assert task["retryPolicy"] == {
            "maxRetryCount": policy.max_retries,
            "backoffDuration": duration(policy.delay_s),
            "backoffFactor": policy.backoff,
            "backoffMaxDuration": duration(policy.max_delay_s),
        }, name


def test_steps_cache_and_the_exit_handler_does_not(ir: dict[str, Any]) -> None:
    for name, task in container_tasks(ir).items():
        assert task["cachingOptions"] == {"enableCache": True}, name
    exit_tasks = {n: t for n, t in ir["root"]["dag"]["tasks"].items() if is_exit_task(t)}
    assert list(exit_tasks) == ["notify-on-failure"]
    notify = exit_tasks["notify-on-failure"]
    assert notify["cachingOptions"].get("enableCache", False) is False
    # It watches the DAG that holds every step.
    (watched,) = notify["dependentTasks"]
    body = ir["components"][ir["root"]["dag"]["tasks"][watched]["componentRef"]["name"]]["dag"]
    assert set(body["tasks"]) == set(PIPELINE.step_names)
    assert notify["inputs"]["parameters"]["status"]["taskFinalStatus"]["producerTask"] == watched
    assert "webhook_url" in ir["root"]["inputDefinitions"]["parameters"]


def test_committed_ir_is_fresh() -> None:
    assert IR_PATH.read_text(encoding="utf-8") == compile_ir(), (
        f"{IR_PATH} is stale: run `.venvs/kubeflow/bin/python -m pipelines.kubeflow.compile`"
    )


def test_compilation_is_deterministic_across_processes(tmp_path: Path) -> None:
    target = tmp_path / "again.yaml"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    command = [sys.executable, "-m", "pipelines.kubeflow.compile", "--output", str(target)]
    subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, timeout=300, capture_output=True)
    assert target.read_text(encoding="utf-8") == compile_ir()


def test_stale_check_fails_on_a_changed_ir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "stale.yaml"
    stale.write_text(IR_PATH.read_text(encoding="utf-8").replace("NUMBER_INTEGER", "STRING", 1))
    assert compile_main(["--check", "--output", str(stale)]) == 1
    assert "stale" in capsys.readouterr().err


def test_every_image_is_the_pinned_shared_ml_image(ir: dict[str, Any]) -> None:
    executors = ir["deploymentSpec"]["executors"]
    images = {e["container"]["image"] for e in executors.values()}
    assert images == {SHARED_ML_IMAGE}
    repository, _, tag = SHARED_ML_IMAGE.rpartition(":")
    assert repository and tag and tag != "latest" and "latest" not in tag


def test_nothing_is_installed_at_run_time(ir: dict[str, Any]) -> None:
    for name, executor in ir["deploymentSpec"]["executors"].items():
        command_line = " ".join(executor["container"]["command"] + executor["container"]["args"])
        for forbidden in ("pip install", "ensurepip", "pip3 install", "uv pip", "--index-url"):
            assert forbidden not in command_line, f"{name} installs at run time: {forbidden!r}"
        assert "kfp.dsl.executor_main" in command_line, name


@pytest.mark.parametrize("shape", ["chain", "fanout"])
def test_workload_pipelines_install_nothing_either(shape: str, tmp_path: Path) -> None:
    from kfp import compiler

    from pipelines.kubeflow.workloads import workload_pipeline

    target = tmp_path / f"{shape}.yaml"
    compiler.Compiler().compile(workload_pipeline(shape, 3), str(target))
    compiled = yaml.safe_load(target.read_text(encoding="utf-8"))
    test_nothing_is_installed_at_run_time(compiled)
    test_every_image_is_the_pinned_shared_ml_image(compiled)
    assert len(compiled["root"]["dag"]["tasks"]) == (3 if shape == "chain" else 5)
