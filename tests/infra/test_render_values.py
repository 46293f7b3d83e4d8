"""The e2e pre-flight's inputs: what `infra.render_values` writes (the values and chart pins the
program declares) and what `infra.validate_manifests` accepts and rejects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from infra import render_values, validate_manifests
from infra.components import airflow, kubeflow, prefect
from infra.footprint import load_stack_file

KUBERNETES_VERSION = "1.33.1"  # the kind node image's (infra/kind/cluster.yaml)
SCHEMA_FILES = {
    "airflow": "airflow-chart-{version}.values.schema.json",
    "prefect-server": "prefect-server.values.schema.json",
    "prefect-worker": "prefect-worker.values.schema.json",
}


@pytest.fixture(scope="module")
def kind_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The kind stack rendered once: (the output folder, its index.json)."""
    out = tmp_path_factory.mktemp("rendered")
    index = render_values.index_of(render_values.declared_resources("kind"))
    path = render_values.write_rendered(index, out)
    return out, json.loads(path.read_text(encoding="utf-8"))


def test_every_release_is_listed_with_its_pinned_chart(kind_index) -> None:
    _, index = kind_index
    config = load_stack_file("kind")
    releases = {r["name"]: r for r in index["releases"]}
    assert set(releases) == {airflow.RELEASE_NAME, prefect.SERVER_RELEASE, prefect.WORKER_RELEASE}
    assert releases["airflow"]["version"] == config.airflow.chart_version
    assert releases["airflow"]["repo"] == airflow.CHART_REPO
    assert releases["airflow"]["namespace"] == config.airflow.namespace
    for name in (prefect.SERVER_RELEASE, prefect.WORKER_RELEASE):
        assert releases[name]["chart"] == name
        assert releases[name]["version"] == config.prefect.chart_version
        assert releases[name]["repo"] == prefect.CHART_REPO
        assert releases[name]["namespace"] == config.prefect.namespace


def test_kustomizations_are_the_pinned_kfp_entry_points_crds_first(kind_index) -> None:
    _, index = kind_index
    version = load_stack_file("kind").kubeflow.version
    targets = [k["target"] for k in index["kustomizations"]]
    assert targets == [
        kubeflow.manifest_url("cluster-scoped-resources", version),
        kubeflow.manifest_url("env/platform-agnostic", version),
    ]
    assert all(t.endswith(f"?ref={version}") for t in targets)


def _integral_floats(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _integral_floats(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _integral_floats(v, f"{path}[{i}]")]
    return [path] if isinstance(value, float) and value.is_integer() else []


def test_values_files_hold_the_values_as_declared(kind_index) -> None:
    """Numbers pass the mocks as floats; the files must say 50000, not 50000.0."""
    out, index = kind_index
    for release in index["releases"]:
        values = yaml.safe_load((out / release["values"]).read_text(encoding="utf-8"))
        assert values, release["name"]
        assert not _integral_floats(values), release["name"]
    worker = yaml.safe_load((out / "prefect-worker.values.yaml").read_text(encoding="utf-8"))
    assert worker["worker"]["containerSecurityContext"]["runAsUser"] == prefect.IMAGE_UID
    assert type(worker["worker"]["containerSecurityContext"]["runAsUser"]) is int


def test_values_files_match_the_charts_schemas(kind_index, schemas_dir: Path) -> None:
    """What `helm template` gets in the pre-flight passes the checks Helm itself makes."""
    out, index = kind_index
    for release in index["releases"]:
        name = SCHEMA_FILES[release["name"]].format(version=release["version"])
        schema = json.loads((schemas_dir / name).read_text(encoding="utf-8"))
        values = yaml.safe_load((out / release["values"]).read_text(encoding="utf-8"))
        errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(values)]
        assert not errors, f"{release['name']}: {errors[:3]}"


def test_an_unknown_stack_exits_2_naming_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert render_values.main(["--stack", "no-such-stack", "--out", "/nonexistent"]) == 2
    assert "Pulumi.no-such-stack.yaml" in capsys.readouterr().err


# --- validate_manifests -------------------------------------------------------------------

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "api", "namespace": "airflow"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "api"}},
        "template": {
            "metadata": {"labels": {"app": "api"}},
            "spec": {"containers": [{"name": "api", "image": "orchbench/shared-ml:0.1.0"}]},
        },
    },
}


def _write(path: Path, *documents: object) -> Path:
    path.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    return path


def test_valid_manifests_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}
    files = [_write(tmp_path / "a.yaml", DEPLOYMENT, None, config_map)]
    assert validate_manifests.main(["--kubernetes-version", "v1.33.1", *map(str, files)]) == 0
    assert "2 object(s) in 1 file(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda d: d["spec"].update(replicas="two"), "Deployment airflow/api: spec.replicas"),
        (lambda d: d["spec"]["template"]["spec"].update(hostNetwrk=True), "hostNetwrk"),
        (lambda d: d.update(apiVersion="extensions/v1beta1"), "no schema for extensions/v1beta1"),
        (lambda d: d.update(apiVersion="example.com/v1", kind="Widget"), "a custom resource"),
    ],
    ids=["wrong-type", "unknown-field", "removed-api", "custom-resource"],
)
def test_invalid_manifests_fail_naming_the_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change, said: str
) -> None:
    document = json.loads(json.dumps(DEPLOYMENT))
    change(document)
    path = _write(tmp_path / "bad.yaml", document)
    assert validate_manifests.main(["--kubernetes-version", KUBERNETES_VERSION, str(path)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and said in err


def test_an_empty_render_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("---\n", encoding="utf-8")
    assert validate_manifests.main(["--kubernetes-version", KUBERNETES_VERSION, str(empty)]) == 1
    assert "no Kubernetes object" in capsys.readouterr().err


def test_an_unsupported_kubernetes_version_exits_2(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.yaml", DEPLOYMENT)
    assert validate_manifests.main(["--kubernetes-version", "1.99.0", str(path)]) == 2
