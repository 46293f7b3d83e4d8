"""Users, paths and images: what each image is built with against how each pod runs it.

One side is the Dockerfile (each variant's chain of stages, `FROM runtime-${EXTRA}` down to
its base image: the user it ends as, its WORKDIR, what it copies where). The other side is
every place a pod running that image is described: the Airflow chart values and the task
pod template, the Prefect worker values and the job template infra hands the worker, and
the KFP IR. (tests/infra/test_dockerfile.py checks the recipe itself; here are the pods.)

The official Airflow image, which the airflow variant starts from, keeps its Python
environment in /home/airflow/.local, a virtualenv (apache/airflow Dockerfile:
`ENV VIRTUAL_ENV="${AIRFLOW_USER_HOME_DIR}/.local"`, made by scripts/docker/create_prod_venv.sh
with `python -m venv ~/.local`; read at the search index's stored revision). A pod volume
over that path, or over the code the Dockerfile copies, would hide them.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from infra.components.image import EXTRAS
from pipelines.kubeflow.deploy import IMAGE_ENV
from pipelines.kubeflow.ir import ir_containers, ir_text_with_image
from tests.infra.mocking import REPO_ROOT, StackRun, helm_release

OFFICIAL_AIRFLOW_ENVIRONMENT = "/home/airflow/.local"


@dataclass
class Variant:
    """What an `EXTRA=<extra>` build ends with."""

    user: str = ""
    workdir: str = ""
    env: dict[str, str] = field(default_factory=dict)
    copied_to: list[str] = field(default_factory=list)


def dockerfile_variant(extra: str) -> Variant:
    """Follow `FROM runtime-${EXTRA}` down the stages, applying USER, WORKDIR, ENV and COPY
    from the base stage up (later instructions win)."""
    text = re.sub(r"\\\n", " ", (REPO_ROOT / "Dockerfile").read_text())
    args: dict[str, str] = {"EXTRA": extra}
    stages: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    order: list[tuple[str, list[tuple[str, str]]]] = []
    for line in (raw.strip() for raw in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            base, _, name = re.sub(r"--\S+\s+", "", rest).partition(" AS ")
            order.append((base.strip(), []))
            if name:
                stages[name.strip()] = order[-1]
        elif not order and keyword == "ARG":
            name, _, default = rest.partition("=")
            args.setdefault(name, default)
        elif order:
            order[-1][1].append((keyword, rest.strip()))

    def expand(value: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), value)

    chain = [order[-1]]
    while expand(chain[-1][0]) in stages:
        chain.append(stages[expand(chain[-1][0])])
    variant = Variant()
    for _, instructions in reversed(chain):
        for keyword, rest in instructions:
            if keyword == "USER":
                variant.user = rest
            elif keyword == "WORKDIR":
                variant.workdir = rest
            elif keyword == "ENV":
                variant.env.update(re.findall(r"(\w+)=(\S+)", rest))
            elif keyword == "COPY":
                variant.copied_to.append(rest.split()[-1])
    return variant


def user_and_group(variant: Variant) -> tuple[int, int]:
    uid, _, gid = variant.user.partition(":")
    return int(uid), int(gid or 0)


def pod_template() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "pipelines/airflow/pod_template.yaml").read_text())


def kfp_ir() -> dict[str, Any]:
    text = (REPO_ROOT / "pipelines/kubeflow/orchbench_ml.yaml").read_text()
    return {k: v for document in yaml.safe_load_all(text) for k, v in document.items()}


def job_template(run: StackRun) -> dict[str, Any]:
    worker = helm_release(run.mocks, "prefect-worker")
    return json.loads(worker.values["worker"]["config"]["baseJobTemplate"]["configuration"])


def users_declared(run: StackRun) -> list[tuple[str, str, int | None, int | None]]:
    """(who, image variant, uid, gid) wherever a pod of a shared_ml image gets its user."""
    airflow = helm_release(run.mocks, "airflow").values
    worker = helm_release(run.mocks, "prefect-worker").values["worker"]
    task_pod = pod_template()["spec"]["securityContext"]
    job = job_template(run)["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    declared = [
        ("airflow chart uid/gid", "airflow", airflow["uid"], airflow["gid"]),
        (
            "airflow chart pod securityContext",
            "airflow",
            airflow["securityContexts"]["pod"].get("runAsUser"),
            airflow["securityContexts"]["pod"].get("runAsGroup"),
        ),
        ("airflow task pod template", "airflow", task_pod["runAsUser"], task_pod["runAsGroup"]),
        (
            "prefect worker pod",
            "prefect",
            worker["podSecurityContext"]["runAsUser"],
            worker["podSecurityContext"]["runAsGroup"],
        ),
        (
            "prefect worker container",
            "prefect",
            worker["containerSecurityContext"]["runAsUser"],
            None,
        ),
        (
            "prefect worker init container",
            "prefect",
            worker["initContainer"]["containerSecurityContext"]["runAsUser"],
            None,
        ),
        (
            "prefect flow-run job",
            "prefect",
            job["securityContext"]["runAsUser"],
            job["securityContext"]["runAsGroup"],
        ),
    ]
    # KFP steps set no user: the image's own USER applies, unless the IR says otherwise.
    for name, executor in kfp_ir()["deploymentSpec"]["executors"].items():
        context = executor["container"].get("securityContext", {})
        declared.append(
            (f"kfp {name}", "kubeflow", context.get("runAsUser"), context.get("runAsGroup"))
        )
    return declared


def test_every_pod_runs_its_image_as_the_user_the_image_was_built_for(stack_run):
    mismatched = []
    for who, extra, uid, gid in users_declared(stack_run):
        built = user_and_group(dockerfile_variant(extra))
        runs_as = (built[0] if uid is None else uid, built[1] if gid is None else gid)
        if runs_as != built:
            mismatched.append(f"{who} runs as {runs_as}, image {extra} is built for {built}")
    assert not mismatched, mismatched
    assert all(user_and_group(dockerfile_variant(extra))[0] != 0 for extra in EXTRAS)


def test_task_pods_start_in_the_images_code_folder_and_hide_nothing_it_ships():
    variant = dockerfile_variant("airflow")
    (container,) = pod_template()["spec"]["containers"]
    assert container.get("workingDir", variant.workdir) == variant.workdir
    volumes = {v["name"]: v for v in pod_template()["spec"]["volumes"]}
    shadows = [
        m["mountPath"] for m in container["volumeMounts"] if "emptyDir" in volumes[m["name"]]
    ]
    shipped = [*variant.copied_to, variant.workdir, OFFICIAL_AIRFLOW_ENVIRONMENT]
    hidden = [
        (mount, path)
        for mount in shadows
        for path in shipped
        if path == mount or path.startswith(mount.rstrip("/") + "/")
    ]
    assert not hidden, f"an empty volume hides what the image ships: {hidden}"
    assert shipped and all(p.startswith("/") for p in shipped)


def kfp_images(ir: dict[str, Any]) -> set[str]:
    return {e["container"]["image"] for e in ir["deploymentSpec"]["executors"].values()}


def workflow_kfp_image_output() -> list[str]:
    """The stack output the e2e workflow hands the KFP submission as its step image: the
    `jq -er '.<path>'` of stack-outputs.json whose value it writes to ORCHBENCH_KFP_IMAGE."""
    text = (REPO_ROOT / ".github/workflows/e2e-kind.yml").read_text()
    found = re.search(r"(\w+)=\"\$\(jq -er '\.([\w.]+)' \.\./stack-outputs\.json\)\"", text)
    assert found, "e2e-kind.yml reads no image ref from stack-outputs.json"
    variable, path = found.groups()
    assert f"{IMAGE_ENV}=${{{variable}}}" in text, f"{variable} never reaches {IMAGE_ENV}"
    return path.split(".")


def without_images(ir_docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    docs = copy.deepcopy(ir_docs)
    for container in ir_containers(docs):
        container.pop("image")
    return docs


@pytest.mark.parametrize("stack", ["kind", "eks"])
def test_kfp_steps_run_the_kubeflow_image_the_stack_provides(stack_runs, stack):
    """The IR is compiled with the local tag; on EKS the stack pushes to ECR. What the KFP
    submission uploads, given the image the workflow takes from the stack's outputs, runs
    that image in every step and differs from the committed IR in nothing else."""
    outputs = stack_runs[stack].resolved
    image = outputs
    for key in workflow_kfp_image_output():
        image = image[key]
    assert image == outputs["images"]["kubeflow"]
    committed_text = (REPO_ROOT / "pipelines/kubeflow/orchbench_ml.yaml").read_text()
    committed = list(yaml.safe_load_all(committed_text))
    uploaded = list(yaml.safe_load_all(ir_text_with_image(committed_text, image)))
    assert {c["image"] for c in ir_containers(uploaded)} == {image}
    assert without_images(uploaded) == without_images(committed)
    if stack == "eks":  # the defect this guards: the compiled tag is not what EKS pulls
        assert kfp_images(kfp_ir()) != {image}
