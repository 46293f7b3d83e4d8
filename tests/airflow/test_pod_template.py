"""The KubernetesExecutor pod template: valid for Kubernetes 1.33 and committed fresh."""

from __future__ import annotations

import kubernetes_validate
import yaml

from pipelines.airflow import manifest as pod_template


def test_committed_pod_template_is_fresh() -> None:
    committed = pod_template.TEMPLATE_PATH.read_text(encoding="utf-8")
    assert committed == pod_template.render(), (
        "pipelines/airflow/pod_template.yaml is stale: run "
        "`.venvs/airflow/bin/python -m pipelines.airflow.manifest`"
    )


def test_pod_template_validates_strictly() -> None:
    manifest = yaml.safe_load(pod_template.TEMPLATE_PATH.read_text(encoding="utf-8"))
    kubernetes_validate.validate(manifest, pod_template.KUBERNETES_VERSION, strict=True)


def test_pod_template_is_pinned_non_root_and_bounded() -> None:
    manifest = yaml.safe_load(pod_template.TEMPLATE_PATH.read_text(encoding="utf-8"))
    spec = manifest["spec"]
    (container,) = spec["containers"]
    assert container["name"] == "base"  # what KubernetesExecutor runs the task in
    # The chart renders the image from infra's pinned images.pod_template (see
    # tests/infra/test_cluster_airflow_contracts.py), not a literal that could go stale.
    assert container["image"] == '{{ include "pod_template_image" . }}'
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])


def test_step_pod_override_keeps_the_base_container() -> None:
    override = pod_template.as_dict(pod_template.step_pod_override("train"))
    (container,) = override["spec"]["containers"]
    assert container["name"] == "base"
    assert container["resources"]["limits"]["memory"] == "2Gi"
    assert pod_template.step_pod_override("ingest") is None


def test_check_fails_on_a_stale_template(tmp_path, capsys) -> None:
    stale = tmp_path / "pod_template.yaml"
    stale.write_text(pod_template.render().replace("250m", "251m", 1), encoding="utf-8")
    assert pod_template.main(["--check", str(stale)]) == 1
    assert "stale" in capsys.readouterr().err
    assert pod_template.main([str(stale)]) == 0  # rewrites it
    assert pod_template.main(["--check", str(stale)]) == 0
