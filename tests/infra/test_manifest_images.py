"""The image list the e2e pre-flight checks in the registries: every image a stack pulls."""

from __future__ import annotations

import json

import yaml

from infra.manifest_images import images_in, main
from infra.render_values import declared_resources, index_of
from tests.infra.mocking import REPO_ROOT


def test_images_come_from_every_container_list_at_any_depth():
    deployment = {
        "kind": "Deployment",
        "spec": {
            "template": {
                "spec": {
                    "initContainers": [{"name": "wait", "image": "busybox:1.37"}],
                    "containers": [{"name": "app", "image": "app:1.0"}],
                }
            }
        },
    }
    # Images a container starts itself: KFP's driver and launcher, Argo's executor.
    api_server = {
        "image": "ml-pipeline/api-server:2.17.0",
        "env": [{"name": "V2_DRIVER_IMAGE", "value": "kfp-driver:2.17.0"}, {"name": "X"}],
    }
    controller = {"image": "workflow-controller:v4", "args": ["--executor-image", "argoexec:v4"]}
    pods = {"spec": {"containers": [api_server, controller]}}
    assert sorted(images_in(pods)) == sorted(
        [
            "ml-pipeline/api-server:2.17.0",
            "kfp-driver:2.17.0",
            "workflow-controller:v4",
            "argoexec:v4",
        ]
    )
    # A custom resource that embeds a pod spec (an Argo workflow template, say).
    custom = {"kind": "Workflow", "spec": {"templates": [{"containers": [{"image": "x:2"}]}]}}
    assert sorted(images_in([deployment, custom])) == ["app:1.0", "busybox:1.37", "x:2"]


def test_the_cli_joins_manifests_index_dockerfile_and_kind_and_skips_our_builds(tmp_path, capsys):
    manifest = tmp_path / "chart.yaml"
    manifest.write_text(
        yaml.safe_dump_all(
            [
                {"kind": "Pod", "spec": {"containers": [{"image": "postgres:16"}]}},
                {"kind": "Pod", "spec": {"containers": [{"image": "orchbench/shared-ml:1-a"}]}},
            ]
        )
    )
    index = tmp_path / "index.json"
    index.write_text(json.dumps({"images": ["store:4"]}))
    code = main(
        [
            *("--index", str(index), "--dockerfile", str(REPO_ROOT / "Dockerfile")),
            *("--kind-config", str(REPO_ROOT / "infra" / "kind" / "cluster.yaml")),
            *("--skip-repository", "orchbench/shared-ml", str(manifest)),
        ]
    )
    printed = capsys.readouterr().out.split()
    assert code == 0
    assert {"postgres:16", "store:4"} <= set(printed)
    assert not any(i.startswith("orchbench/shared-ml:") for i in printed)
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert any(i.startswith("apache/airflow:") and i in dockerfile for i in printed)
    assert any(i.startswith("kindest/node:") and "@sha256:" in i for i in printed)


def test_the_index_lists_the_images_of_pods_the_program_declares_itself():
    """SeaweedFS is a plain Deployment of the program, not a chart: its image must be in
    the list too, or the pre-flight would never look it up."""
    from infra.components.storage import SEAWEEDFS_IMAGE

    images = index_of(declared_resources("kind"))["images"]
    assert any(i.startswith(f"{SEAWEEDFS_IMAGE}:") for i in images), images
