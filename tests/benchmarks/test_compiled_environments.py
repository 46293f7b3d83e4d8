"""The benchmark measures each tool as production installs it: with compiled bytecode.

Without the .pyc files (uv's default) and with PYTHONDONTWRITEBYTECODE set, every task
process compiles its imports from source; `orchbench bench` refuses such an environment,
naming it and the fix, before any work starts."""

from __future__ import annotations

import py_compile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks.cli import app
from benchmarks.environments import venvs_dir
from benchmarks.harness.setup_cost import bytecode_missing
from tests.prerequisites import missing


def fake_environment(venvs: Path, venv: str, package: str) -> Path:
    init = venvs / venv / "lib" / "python3.11" / "site-packages" / package / "__init__.py"
    init.parent.mkdir(parents=True)
    init.write_text("VERSION = 1\n", encoding="utf-8")
    (venvs / venv / "bin").mkdir()
    (venvs / venv / "bin" / "python").symlink_to("/usr/bin/python3")
    return init


def test_an_environment_without_bytecode_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHBENCH_VENVS", str(tmp_path))
    init = fake_environment(tmp_path, "prefect", "prefect")
    why = bytecode_missing("prefect")
    assert why and str(tmp_path / "prefect") in why and "make envs" in why
    done = CliRunner().invoke(
        app, ["bench", "--tools", "prefect", "--quick", "-o", str(tmp_path / "r")]
    )
    said = " ".join(done.output.split())
    assert done.exit_code == 2, done.output
    assert "prefect has no compiled bytecode" in said
    assert not (tmp_path / "r").exists(), "nothing is written before the refusal"

    py_compile.compile(str(init), doraise=True)  # as `uv sync --compile-bytecode` does
    assert bytecode_missing("prefect") is None


@pytest.mark.parametrize("tool", ["airflow", "prefect", "kubeflow"])
def test_the_projects_own_environments_are_compiled(tool: str) -> None:
    """`make envs` built these (with --compile-bytecode); the suites run in them."""
    if not (venvs_dir() / tool / "bin" / "python").exists():
        missing(
            f"{venvs_dir() / tool} is not built here (make envs)",
            f"{venvs_dir() / tool} is missing",
        )
    assert bytecode_missing(tool) is None, bytecode_missing(tool)
