"""The committed IR: its graph is the spec's (the ParallelFor branches and the Collected fan-in
included), it is fresh, deterministic, pinned and install-free."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.kubeflow.manifest import IR_PATH, compile_ir
from pipelines.kubeflow.manifest import main as compile_main
from pipelines.kubeflow.pipeline import LOOP_NAME, duration
from pipelines.kubeflow.tasks import PARAMETER_NAMES, SHARED_ML_IMAGE, UI_OUTPUTS
from shared_ml.config import load_config
from shared_ml.spec import PIPELINE, task_key

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"
EXIT_STRATEGY = "ALL_UPSTREAM_TASKS_COMPLETED"


@pytest.fixture(scope="module")
def ir() -> dict[str, Any]:
    # The pipeline spec; the Kubernetes platform spec is the file's second document.
    return next(yaml.safe_load_all(IR_PATH.read_text(encoding="utf-8")))


def is_exit_task(task: dict[str, Any]) -> bool:
    params = task.get("inputs", {}).get("parameters", {}).values()
    return task.get("triggerPolicy", {}).get("strategy") == EXIT_STRATEGY and any(
        "taskFinalStatus" in p for p in params
    )


def container_tasks(ir: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every task that runs a container, found by walking into nested DAGs (the ExitHandler
    body and the ParallelFor body are two), minus exit-handler tasks."""
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


def dag_of(ir: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    return ir["components"][task["componentRef"]["name"]]["dag"]


def exit_handler_body(ir: dict[str, Any]) -> dict[str, Any]:
    (body,) = [t for t in ir["root"]["dag"]["tasks"].values() if not is_exit_task(t)]
    return dag_of(ir, body)


def the_loop(ir: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The one ParallelFor task of the body: (its task name, its task spec)."""
    loops = [(n, t) for n, t in exit_handler_body(ir)["tasks"].items() if "parameterIterator" in t]
    assert len(loops) == 1, loops
    return loops[0]


Source = tuple[str, str, str]  # (producer step, its output, "plain" | "branch" | "collected")


def wiring(ir: dict[str, Any]) -> dict[str, dict[str, Source]]:
    """step -> {spec input name: where its artifact comes from}, read from the IR.

    Inside the loop, a producer in the loop is the same iteration's ("branch"), and a
    loop input resolves to the outer task that feeds it ("plain"); outside, an input taken
    from the loop's outputs is every iteration's artifact ("collected", dsl.Collected).
    """
    loop_name, loop = the_loop(ir)
    loop_dag = dag_of(ir, loop)
    wired: dict[str, dict[str, Source]] = {}

    def spec_name(step: str, parameter: str) -> str:
        aliases = {kfp: spec for spec, kfp in PARAMETER_NAMES.get(step, {}).items()}
        return aliases.get(parameter, parameter)

    for name, task in exit_handler_body(ir)["tasks"].items():
        if name == loop_name:
            continue
        wired[name] = {}
        for parameter, artifact in task.get("inputs", {}).get("artifacts", {}).items():
            producer = artifact["taskOutputArtifact"]["producerTask"]
            key = artifact["taskOutputArtifact"]["outputArtifactKey"]
            if producer == loop_name:
                (selector,) = loop_dag["outputs"]["artifacts"][key]["artifactSelectors"]
                source = (selector["producerSubtask"], selector["outputArtifactKey"], "collected")
            else:
                source = (producer, key, "plain")
            wired[name][spec_name(name, parameter)] = source
    for name, task in loop_dag["tasks"].items():
        wired[name] = {}
        for parameter, artifact in task.get("inputs", {}).get("artifacts", {}).items():
            if "componentInputArtifact" in artifact:
                outer = loop["inputs"]["artifacts"][artifact["componentInputArtifact"]]
                produced = outer["taskOutputArtifact"]
                source = (produced["producerTask"], produced["outputArtifactKey"], "plain")
            else:
                produced = artifact["taskOutputArtifact"]
                source = (produced["producerTask"], produced["outputArtifactKey"], "branch")
            wired[name][spec_name(name, parameter)] = source
    return wired


def expanded_graph(ir: dict[str, Any], candidates: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """The task graph KFP runs for ``candidates``: each loop-body task once per iteration."""
    _, loop = the_loop(ir)
    in_loop = set(dag_of(ir, loop)["tasks"])
    graph: dict[str, frozenset[str]] = {}
    for step, inputs in wiring(ir).items():
        for branch in candidates if step in in_loop else (None,):
            upstream: set[str] = set()
            for producer, _, fan in inputs.values():
                if fan == "plain":
                    upstream.add(producer)
                elif fan == "branch":
                    upstream.add(task_key(producer, branch))
                else:
                    upstream |= {task_key(producer, c) for c in candidates}
            graph[task_key(step, branch)] = frozenset(upstream)
    return graph


@pytest.mark.parametrize(
    "candidates",
    [load_config(DEFAULT_CONFIG).candidate_names, ("logistic_regression",)],
    ids=["default-config", "single-model"],
)
def test_graph_read_back_from_the_ir_equals_the_spec(
    ir: dict[str, Any], candidates: tuple[str, ...]
) -> None:
    assert set(container_tasks(ir)) == set(PIPELINE.step_names)
    assert expanded_graph(ir, candidates) == PIPELINE.expand(candidates)


def test_the_candidate_branches_are_a_parallel_for_over_preprocess_output(
    ir: dict[str, Any],
) -> None:
    _, loop = the_loop(ir)
    assert loop["taskInfo"]["name"] == LOOP_NAME
    # Exactly the spec's per-candidate steps run once per iteration.
    assert set(dag_of(ir, loop)["tasks"]) == {s.name for s in PIPELINE.steps if s.per_candidate}
    # The items are preprocess's returned list of candidate names, known at run time.
    items = loop["parameterIterator"]["items"]["inputParameter"]
    assert loop["inputs"]["parameters"][items]["taskOutputParameter"] == {
        "outputParameterKey": "Output",
        "producerTask": "preprocess",
    }
    # Each branch task gets the loop item as its `candidate` (execute_step's branch).
    item = loop["parameterIterator"]["itemInput"]
    for name, task in dag_of(ir, loop)["tasks"].items():
        parameter = task["inputs"]["parameters"]["candidate"]
        assert parameter == {"componentInputParameter": item}, name
    # No parallelism cap in the IR: on a cluster every candidate runs at once.
    assert "iteratorPolicy" not in loop


def test_the_fan_in_is_collected_into_artifact_lists(ir: dict[str, Any]) -> None:
    for step in PIPELINE.step_names:
        collected = {p for p, (_, _, fan) in wiring(ir)[step].items() if fan == "collected"}
        assert collected == PIPELINE.collected_inputs(step), step
    inputs = ir["components"]["comp-select"]["inputDefinitions"]["artifacts"]
    for parameter in PIPELINE.collected_inputs("select"):
        kfp_name = PARAMETER_NAMES["select"].get(parameter, parameter)
        assert inputs[kfp_name]["isArtifactList"] is True, parameter


def test_each_step_consumes_exactly_the_spec_inputs(ir: dict[str, Any]) -> None:
    for name, inputs in wiring(ir).items():
        consumed = {
            param: f"{producer}.{output}" for param, (producer, output, _) in inputs.items()
        }
        assert consumed == PIPELINE.step(name).inputs, name
    for name, task in container_tasks(ir).items():
        outputs = ir["components"][task["componentRef"]["name"]]["outputDefinitions"]
        ui_only = set(UI_OUTPUTS.get(name, ()))
        assert set(outputs["artifacts"]) - ui_only == set(PIPELINE.step(name).outputs), name


def test_ordering_comes_only_from_the_data(ir: dict[str, Any]) -> None:
    """No task waits on anything it does not consume: dependentTasks are exactly the
    producers of its inputs (the loop, for the collected inputs)."""
    loop_name, loop = the_loop(ir)
    for dag in (exit_handler_body(ir), dag_of(ir, loop)):
        for name, task in dag["tasks"].items():
            artifacts = task.get("inputs", {}).get("artifacts", {}).values()
            producers = {
                a["taskOutputArtifact"]["producerTask"]
                for a in artifacts
                if "taskOutputArtifact" in a
            }
            if name == loop_name:
                producers.add("preprocess")  # the items: preprocess's returned list
            assert set(task.get("dependentTasks", [])) == producers, name


def test_artifacts_are_typed(ir: dict[str, Any]) -> None:
    def output_type(step: str, output: str) -> str:
        component = ir["components"][f"comp-{step}"]
        return component["outputDefinitions"]["artifacts"][output]["artifactType"]["schemaTitle"]

    assert output_type("ingest", "dataset") == "system.Dataset"
    assert output_type("preprocess", "train_set") == "system.Dataset"
    assert output_type("preprocess", "transformer") == "system.Model"
    assert output_type("train", "model") == "system.Model"
    assert output_type("evaluate", "metrics") == "system.Metrics"
    assert output_type("evaluate", "classification") == "system.ClassificationMetrics"
    assert output_type("select", "model") == "system.Model"
    assert output_type("select", "metrics") == "system.Metrics"
    assert output_type("score", "predictions") == "system.Dataset"


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
    # It watches the DAG that holds every step (the loop's, nested in it, included).
    (watched,) = notify["dependentTasks"]
    assert dag_of(ir, ir["root"]["dag"]["tasks"][watched]) == exit_handler_body(ir)
    assert notify["inputs"]["parameters"]["status"]["taskFinalStatus"]["producerTask"] == watched
    assert "webhook_url" in ir["root"]["inputDefinitions"]["parameters"]
    assert "logical_date" in ir["root"]["inputDefinitions"]["parameters"]


def test_committed_ir_is_fresh() -> None:
    assert IR_PATH.read_text(encoding="utf-8") == compile_ir(), (
        f"{IR_PATH} is stale: run `.venvs/kubeflow/bin/python -m pipelines.kubeflow.manifest`"
    )


def test_compilation_is_deterministic_across_processes(tmp_path: Path) -> None:
    target = tmp_path / "again.yaml"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    command = [sys.executable, "-m", "pipelines.kubeflow.manifest", str(target)]
    subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, timeout=300, capture_output=True)
    assert target.read_text(encoding="utf-8") == compile_ir()


def test_stale_check_fails_on_a_changed_ir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "stale.yaml"
    stale.write_text(IR_PATH.read_text(encoding="utf-8").replace("NUMBER_INTEGER", "STRING", 1))
    assert compile_main(["--check", str(stale)]) == 1
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
