"""Static checks of the shared_ml image recipe (no Docker engine here; CI builds it).

The Dockerfile is parsed into its stages, and each variant's chain of stages (``FROM
runtime-${EXTRA}`` down to a base image) is checked against the contracts the charts and
pods rely on: the base image, the user, the homes, the locked environment.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field

import pytest
from packaging.specifiers import SpecifierSet

from infra.components.image import EXTRAS
from tests.infra.mocking import REPO_ROOT

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
DOCKERIGNORE = [
    line.strip()
    for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
IMAGE_UID = 50000
# The official image's user home (apache/airflow Dockerfile, `main` stage: ARG
# AIRFLOW_USER_HOME_DIR=/home/airflow, `chown -R airflow:0` with airflow at uid 50000).
AIRFLOW_IMAGE_HOME = "/home/airflow"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _logical_lines(text: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", text)
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")
    ]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """The global ARG defaults (before the first FROM) and the stages, in order."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?", args, re.IGNORECASE)
            assert match, f"unparsed FROM: {line}"
            stages.append(Stage(base=match.group(1), name=match.group(2)))
        elif not stages:
            if keyword == "ARG":
                name, _, default = args.partition("=")
                global_args[name] = default
        else:
            stages[-1].instructions.append((keyword, args.strip()))
    return global_args, stages


GLOBAL_ARGS, STAGES = parse(DOCKERFILE)
BY_NAME = {s.name: s for s in STAGES if s.name}


def expand(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), value)


def chain(extra: str) -> list[Stage]:
    """The stages an ``EXTRA=extra`` build's image is made of, final stage first."""
    args = {**GLOBAL_ARGS, "EXTRA": extra}
    stages = [STAGES[-1]]
    while (base := expand(stages[-1].base, args)) in BY_NAME:
        stages.append(BY_NAME[base])
    return stages


def base_image(extra: str) -> str:
    return expand(chain(extra)[-1].base, {**GLOBAL_ARGS, "EXTRA": extra})


def env_of(stages: list[Stage]) -> dict[str, str]:
    """ENV of a chain, later stages overriding earlier ones (KEY=VALUE forms only)."""
    env: dict[str, str] = {}
    for stage in reversed(stages):
        for args in stage.args("ENV"):
            env.update(dict(re.findall(r"(\w+)=(\S+)", args)))
    return env


def locked_version(package: str) -> str:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    return next(p["version"] for p in lock["package"] if p["name"] == package)


def python_minor(image: str) -> str:
    match = re.search(r"python:?(3\.\d+)", image)
    assert match, f"no Python version in {image}"
    return match.group(1)


def test_final_stage_selects_one_runtime_per_extra():
    assert STAGES[-1].base == "runtime-${EXTRA}" and STAGES[-1].name is None
    for extra in EXTRAS:
        assert f"runtime-{extra}" in BY_NAME, f"no stage runtime-{extra} for EXTRA={extra}"


def test_airflow_variant_is_the_official_image_at_the_locked_version():
    slim_python = python_minor(GLOBAL_ARGS["PYTHON_IMAGE"])
    expected = f"apache/airflow:{locked_version('apache-airflow')}-python{slim_python}"
    assert base_image("airflow") == expected
    # The official image's ENTRYPOINT (dumb-init -- /entrypoint) is what the chart's probes use.
    assert not any(stage.args("ENTRYPOINT") for stage in chain("airflow"))


@pytest.mark.parametrize("extra", [e for e in EXTRAS if e != "airflow"])
def test_other_variants_are_pinned_python_slim(extra):
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", GLOBAL_ARGS["PYTHON_IMAGE"])
    assert base_image(extra) == GLOBAL_ARGS["PYTHON_IMAGE"]


def test_python_minor_is_one_the_project_supports():
    requires = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "requires-python"
    ]
    for extra in EXTRAS:
        assert f"{python_minor(base_image(extra))}.0" in SpecifierSet(requires), extra


@pytest.mark.parametrize("extra", EXTRAS)
def test_runs_as_uid_50000_with_homes_it_owns(extra):
    stages = chain(extra)
    users = [u for stage in reversed(stages) for u in stage.args("USER")]
    assert users and users[-1] == f"{IMAGE_UID}:0", f"{extra} must end as {IMAGE_UID}:0"
    env = env_of(stages)
    runs = " ".join(r for stage in stages for r in stage.args("RUN"))
    owned = set(re.findall(rf"chown {IMAGE_UID}:0 ((?:/\S+ ?)+)", runs))
    owned = {path for group in owned for path in group.split()}
    owned |= set(re.findall(rf"useradd --uid {IMAGE_UID} .*?--home-dir (\S+) --create-home", runs))
    assert env.get("ORCHBENCH_HOME") in owned, f"{extra}: ORCHBENCH_HOME not made {IMAGE_UID}'s"
    home = env.get("HOME")
    if extra == "airflow":
        assert home == AIRFLOW_IMAGE_HOME  # the official image's user home, uid 50000's
    else:
        assert home in owned, f"{extra}: HOME not made {IMAGE_UID}'s"
    # ...and the build proves it as that user.
    assert 'test -w "$HOME"' in runs and 'test -w "$ORCHBENCH_HOME"' in runs


def test_the_pod_template_uses_the_image_homes_and_user():
    """The KubernetesExecutor pod runs the airflow variant: same uid, same ORCHBENCH_HOME."""
    import yaml

    pod = yaml.safe_load((REPO_ROOT / "pipelines/airflow/pod_template.yaml").read_text())
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert pod["spec"]["securityContext"]["runAsUser"] == IMAGE_UID
    assert env["ORCHBENCH_HOME"] == env_of(chain("airflow"))["ORCHBENCH_HOME"]
    assert (
        env["AIRFLOW__CORE__DAGS_FOLDER"] == env_of(chain("airflow"))["AIRFLOW__CORE__DAGS_FOLDER"]
    )


def test_slim_variants_are_built_from_the_lock_file():
    runs = " ".join(BY_NAME["builder"].args("RUN"))
    assert runs.count("uv sync --frozen") >= 2  # dependencies layer, then the project
    assert '--extra "${EXTRA}"' in runs
    assert "COPY pyproject.toml uv.lock" in DOCKERFILE
    assert re.search(r'pip install --no-cache-dir "uv==\$\{UV_VERSION\}"', DOCKERFILE)
    assert re.search(r"ARG UV_VERSION=\d+\.\d+\.\d+", DOCKERFILE)


def test_airflow_variant_environment_is_exactly_the_lock():
    export = " ".join(BY_NAME["airflow-lock"].args("RUN"))
    assert "uv export --frozen" in export and "--extra airflow" in export
    runs = " ".join(BY_NAME["runtime-airflow"].args("RUN"))
    # sync (exact), into the image's own environment, then the project without deps.
    assert re.search(r'uv pip sync .*--python "\$\{VIRTUAL_ENV\}/bin/python"', runs)
    assert "uv pip install --no-deps" in runs


def test_uv_matches_the_makefile_pin():
    makefile = (REPO_ROOT / "Makefile").read_text()
    pinned = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert pinned and f"ARG UV_VERSION={pinned.group(1)}" in DOCKERFILE


def test_users_match_the_charts():
    from infra.components.airflow import IMAGE_UID as AIRFLOW_UID
    from infra.components.prefect import IMAGE_UID as PREFECT_IMAGE_UID

    assert AIRFLOW_UID == PREFECT_IMAGE_UID == IMAGE_UID


def test_repo_layout_and_dag_folder_match_the_airflow_values():
    from infra.components.airflow import DAGS_FOLDER

    env = env_of(chain("airflow"))
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == DAGS_FOLDER
    copies = BY_NAME["runtime-airflow"].args("COPY")
    assert f"--chown={IMAGE_UID}:0 pipelines /opt/orchbench/pipelines" in copies
    assert DAGS_FOLDER.startswith("/opt/orchbench/pipelines")


def test_dockerignore_keeps_the_context_small_and_secret_free():
    for entry in (".git", ".venvs", "reports", "var", "tests", "*.env"):
        assert entry in DOCKERIGNORE
    for needed in ("uv.lock", "pyproject.toml", "shared_ml", "pipelines", "configs", "README.md"):
        assert needed not in DOCKERIGNORE
