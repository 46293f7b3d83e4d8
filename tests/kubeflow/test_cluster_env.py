"""The IR's cluster environment, and how a local run keeps its own home.

Every task of the committed IR sets ``ORCHBENCH_HOME`` to the image's home for its pod
(``pipelines/kubeflow/cluster_env.py``); kfp.local applies a task's container env over the
launcher's, so the local runner must hand each task this machine's home instead, and
change nothing else. The Secret mapping is a Kubernetes platform config, which kfp.local
does not apply.
"""

from __future__ import annotations

from pathlib import Path

from kfp import components
from kfp.local import utils as local_utils

from pipelines.kubeflow.cluster_env import HOME_ENV, IMAGE_HOME
from pipelines.kubeflow.run import IR_PATH, load_local_ir


def task_envs(pipeline) -> dict[str, dict[str, str]]:
    """Each executor's container env as kfp.local reads it (its own conversion)."""
    executors = pipeline.pipeline_spec.deployment_spec["executors"]
    return {
        name: {e.name: e.value for e in local_utils.struct_to_executor_spec(spec).container.env}
        for name, spec in executors.items()
    }


def test_the_committed_ir_gives_every_task_the_images_home() -> None:
    envs = task_envs(components.load_component_from_file(str(IR_PATH)))
    assert envs and all(env == {HOME_ENV: IMAGE_HOME} for env in envs.values()), envs


def test_a_local_run_gives_every_task_this_machines_home(tmp_path: Path) -> None:
    pipeline = load_local_ir(IR_PATH, tmp_path)
    envs = task_envs(pipeline)
    assert envs and all(env == {HOME_ENV: str(tmp_path)} for env in envs.values()), envs
    # Nothing else changed: the same tasks and platform config (the Secrets) as committed.
    committed = components.load_component_from_file(str(IR_PATH))
    assert "kubernetes" in committed.platform_spec.platforms
    assert pipeline.pipeline_spec.root == committed.pipeline_spec.root
    assert pipeline.platform_spec == committed.platform_spec
    assert f"value: {IMAGE_HOME}" in IR_PATH.read_text(encoding="utf-8")
