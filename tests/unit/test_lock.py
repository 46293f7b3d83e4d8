"""uv.lock gives each orchestrator's image its own Kubernetes client (issue 15, defect 7).

kfp 2.17 pins ``kubernetes<31``. While the airflow and kubeflow extras could be installed
together, the universal lock held one Kubernetes client for both, so the Airflow image got
kfp's old client and a cncf-kubernetes provider to match, far behind current. Declared as
conflicting extras, each resolves on its own: read here through ``uv export``, as the
Dockerfile installs each variant.
"""

from __future__ import annotations

import subprocess
import tomllib

import pytest
from packaging.version import Version

from tests.conftest import REPO_ROOT

UV = REPO_ROOT / ".venvs" / "uv" / "bin" / "uv"


def exported(extra: str) -> dict[str, Version]:
    if not UV.is_file():
        pytest.fail(f"{UV} missing: `make envs` installs uv first")
    done = subprocess.run(
        [str(UV), "export", "--frozen", "--no-hashes", "--no-emit-project", "--extra", extra],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    pins = {}
    for line in done.stdout.splitlines():
        name, sep, version = line.split(";")[0].strip().partition("==")
        if sep:
            pins[name.lower()] = Version(version)
    return pins


def test_airflow_and_kubeflow_are_declared_conflicting_extras() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pairs = [{e["extra"] for e in pair} for pair in pyproject["tool"]["uv"]["conflicts"]]
    assert {"airflow", "kubeflow"} in pairs


def test_each_image_gets_its_own_kubernetes_client() -> None:
    airflow, kubeflow = exported("airflow"), exported("kubeflow")
    assert kubeflow["kubernetes"] < Version("31")  # kfp's own pin
    # The Airflow image is no longer held back by kfp's pin.
    assert airflow["kubernetes"] >= Version("31"), airflow["kubernetes"]
    assert "kfp" not in airflow and "apache-airflow" not in kubeflow
