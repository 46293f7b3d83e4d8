"""Static checks of the shared_ml image recipe (no Docker engine here; CI builds it)."""

from __future__ import annotations

import re

import pytest

from infra.components.image import EXTRAS
from tests.infra.mocking import REPO_ROOT

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
DOCKERIGNORE = [
    line.strip()
    for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


def instructions(keyword: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    return [
        line.strip()[len(keyword) :].strip()
        for line in joined.splitlines()
        if line.strip().upper().startswith(keyword + " ")
    ]


def test_base_image_is_pinned_python_311_slim_bookworm():
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert base, "the base image is one ARG used by every stage"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base.group(1))
    stages = instructions("FROM")
    assert len(stages) >= 2, "multi-stage: a builder and a runtime"
    assert all(stage.startswith("${PYTHON_IMAGE}") for stage in stages)


def test_built_from_the_lock_file():
    runs = " ".join(instructions("RUN"))
    assert runs.count("uv sync --frozen") >= 2  # dependencies layer, then the project
    assert '--extra "${EXTRA}"' in runs
    assert "COPY pyproject.toml uv.lock" in DOCKERFILE
    assert re.search(r'pip install --no-cache-dir "uv==\$\{UV_VERSION\}"', DOCKERFILE)
    assert re.search(r"ARG UV_VERSION=\d+\.\d+\.\d+", DOCKERFILE)


@pytest.mark.parametrize("extra", EXTRAS)
def test_each_extra_is_a_valid_build_arg(extra):
    guard = re.search(r'case "\$\{EXTRA\}" in ([a-z|]+)\)', DOCKERFILE)
    assert guard and extra in guard.group(1).split("|")


def test_runs_as_non_root_with_the_uid_the_charts_expect():
    from infra.components.airflow import IMAGE_UID
    from infra.components.prefect import IMAGE_UID as PREFECT_IMAGE_UID

    users = instructions("USER")
    assert users == [f"{IMAGE_UID}:0"]
    assert PREFECT_IMAGE_UID == IMAGE_UID
    assert f"--uid {IMAGE_UID}" in DOCKERFILE


def test_repo_layout_and_dag_folder_match_the_airflow_values():
    from infra.components.airflow import DAGS_FOLDER

    assert f"AIRFLOW__CORE__DAGS_FOLDER={DAGS_FOLDER}" in DOCKERFILE
    assert "COPY --from=builder /src/pipelines /opt/orchbench/pipelines" in DOCKERFILE


def test_dockerignore_keeps_the_context_small_and_secret_free():
    for entry in (".git", ".venvs", "reports", "var", "tests", "*.env"):
        assert entry in DOCKERIGNORE
    for needed in ("uv.lock", "pyproject.toml", "shared_ml", "pipelines", "README.md"):
        assert needed not in DOCKERIGNORE
