"""The EKS stack under mocks: node egress, default storage, ECR, IRSA for the artifact bucket."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess

import pytest

from infra.components.cluster import irsa_trust_policy, subnet_cidrs
from infra.components.image import ecr_registry, push_command
from infra.config import StackConfigError, parse_stack_config
from tests.infra.mocking import (
    MOCK_AWS_ACCOUNT,
    MOCK_OIDC_ISSUER,
    RELEASE,
    StackRun,
    run_stack,
    transitive_dependencies,
)

EKS = "eks:index:Cluster"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTES = "aws:ec2/routeTable:RouteTable"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
NAT = "aws:ec2/natGateway:NatGateway"
ROLE = "aws:iam/role:Role"
PATCH = "kubernetes:core/v1:ServiceAccountPatch"
REGISTRY = f"{MOCK_AWS_ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"
OIDC_ARN = f"arn:aws:iam::{MOCK_AWS_ACCOUNT}:oidc-provider/{MOCK_OIDC_ISSUER}"


def eks_stack(**eks) -> StackRun:
    return run_stack("eks", {"orchbench:cluster": {"provider": "eks", "eks": eks}})


def subnets(run: StackRun, kind: str) -> list:
    return [d for d in run.mocks.of_type(SUBNET) if d.name.startswith(f"cluster-{kind}-")]


def trust(role) -> tuple[str, set[str], str]:
    """(federated principal, subjects, audience) of an IRSA role's trust policy."""
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    equals = statement["Condition"]["StringEquals"]
    subjects = equals[f"{MOCK_OIDC_ISSUER}:sub"]
    return statement["Principal"]["Federated"], set(subjects), equals[f"{MOCK_OIDC_ISSUER}:aud"]


# --- network: nodes have egress -----------------------------------------------------------------


def test_public_nodes_get_public_ips_and_a_route_to_the_internet(stack_runs):
    run = stack_runs["eks"]
    cluster = run.mocks.named("cluster-eks", EKS).inputs
    public = subnets(run, "public")
    assert cluster["vpcId"] == "cluster-vpc-id"
    assert cluster["publicSubnetIds"] == [f"{s.name}-id" for s in public]
    assert "privateSubnetIds" not in cluster
    assert cluster["nodeAssociatePublicIpAddress"] is True
    assert {s.inputs["availabilityZone"] for s in public} == {"eu-west-1a", "eu-west-1b"}
    assert all(s.inputs["mapPublicIpOnLaunch"] is True for s in public)
    routes = run.mocks.named("cluster-public-routes", ROUTES).inputs["routes"]
    assert routes == [{"cidrBlock": "0.0.0.0/0", "gatewayId": "cluster-igw-id"}]
    associated = {
        a.inputs["subnetId"]
        for a in run.mocks.of_type(ASSOCIATION)
        if a.inputs["routeTableId"] == "cluster-public-routes-id"
    }
    assert associated == set(cluster["publicSubnetIds"])
    assert run.mocks.of_type(NAT) == []  # public nodes need none: no NAT gateway to pay for
    # The nodes boot only once their subnets route out (image pulls, joining the cluster).
    waits_for = transitive_dependencies(run.mocks, "cluster-eks", EKS)
    assert {a.name for a in run.mocks.of_type(ASSOCIATION)} <= waits_for


def test_private_nodes_reach_out_through_one_nat_gateway():
    zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    run = eks_stack(nodeSubnets="private", availabilityZones=zones)
    cluster = run.mocks.named("cluster-eks", EKS).inputs
    private, public = subnets(run, "private"), subnets(run, "public")
    assert cluster["privateSubnetIds"] == [f"{s.name}-id" for s in private]
    assert cluster["publicSubnetIds"] == [f"{s.name}-id" for s in public]
    assert cluster["nodeAssociatePublicIpAddress"] is False
    assert [s.inputs["availabilityZone"] for s in private] == zones
    assert not any(s.inputs.get("mapPublicIpOnLaunch") for s in private + public)
    (nat,) = run.mocks.of_type(NAT)
    assert nat.inputs["subnetId"] in cluster["publicSubnetIds"]  # the NAT itself needs the IGW
    assert nat.inputs["allocationId"] == "cluster-nat-ip-id"
    routes = run.mocks.named("cluster-private-routes", ROUTES).inputs["routes"]
    assert routes == [{"cidrBlock": "0.0.0.0/0", "natGatewayId": "cluster-nat-id"}]
    associated = {
        a.inputs["subnetId"]
        for a in run.mocks.of_type(ASSOCIATION)
        if a.inputs["routeTableId"] == "cluster-private-routes-id"
    }
    assert associated == set(cluster["privateSubnetIds"])
    waits_for = transitive_dependencies(run.mocks, "cluster-eks", EKS)
    assert {"cluster-nat", "cluster-private-routes"} <= waits_for


@pytest.mark.parametrize("mode", ["public", "private"])
@pytest.mark.parametrize("zones", [2, 3])
def test_subnets_split_the_vpc_without_overlap(mode, zones):
    names = [f"us-east-1{letter}" for letter in "abc"[:zones]]
    settings = parse_stack_config(
        {
            "orchbench:cluster": {
                "provider": "eks",
                "eks": {
                    "region": "us-east-1",
                    "nodeSubnets": mode,
                    "vpcCidr": "10.20.0.0/20",
                    "availabilityZones": names,
                },
            }
        }
    ).cluster.eks
    cidrs = subnet_cidrs(settings)
    blocks = [ipaddress.ip_network(c) for kind in cidrs.values() for c in kind]
    assert len(blocks) == zones * (2 if mode == "private" else 1)
    vpc = ipaddress.ip_network("10.20.0.0/20")
    assert all(block.subnet_of(vpc) for block in blocks)
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1 :])


@pytest.mark.parametrize(
    ("eks", "message"),
    [
        ({"vpcCidr": "10.0.0.0/8"}, "vpcCidr: expected an IPv4 network from /16 to /20"),
        ({"vpcCidr": "10.0.0.300/16"}, "vpcCidr: expected an IPv4 network like 10.0.0.0/16"),
        ({"availabilityZones": ["eu-west-1a"]}, "two or more distinct zones of eu-west-1"),
        ({"availabilityZones": ["us-east-1a", "us-east-1b"]}, "zones of eu-west-1"),
        ({"nodeSubnets": "both"}, "orchbench:cluster.eks.nodeSubnets"),
    ],
)
def test_bad_network_settings_fail_before_any_resource(eks, message):
    with pytest.raises(StackConfigError, match=r"orchbench:cluster\.eks") as error:
        parse_stack_config({"orchbench:cluster": {"provider": "eks", "eks": eks}})
    assert message in str(error.value)


# --- storage: a default StorageClass through the EBS CSI add-on ---------------------------------


def test_ebs_csi_addon_runs_with_its_own_irsa_role(stack_runs):
    run = stack_runs["eks"]
    addon = run.mocks.named("cluster-ebs-csi", "aws:eks/addon:Addon")
    assert addon.inputs["addonName"] == "aws-ebs-csi-driver"
    assert addon.inputs["clusterName"] == run.mocks.named("cluster-eks", EKS).inputs["name"]
    assert "cluster-eks" in addon.depends_on
    role = run.mocks.named("cluster-ebs-csi-role", ROLE)
    assert addon.inputs["serviceAccountRoleArn"] == role.outputs["arn"]
    assert trust(role) == (
        OIDC_ARN,
        {"system:serviceaccount:kube-system:ebs-csi-controller-sa"},
        "sts.amazonaws.com",
    )
    attachment = run.mocks.named("cluster-ebs-csi-policy")
    assert attachment.inputs == {
        "role": "cluster-ebs-csi-role-id",
        "policyArn": "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy",
    }
    assert "cluster-ebs-csi-policy" in addon.depends_on  # no driver without its permissions


def test_gp3_is_the_one_default_storage_class_and_waits_for_the_driver(stack_runs):
    classes = stack_runs["eks"].mocks.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    default = [
        c
        for c in classes
        if c.inputs["metadata"]
        .get("annotations", {})
        .get("storageclass.kubernetes.io/is-default-class")
        == "true"
    ]
    assert len(default) == 1
    (gp3,) = default
    assert gp3.inputs["provisioner"] == "ebs.csi.aws.com"
    assert gp3.inputs["parameters"] == {"type": "gp3", "encrypted": "true"}
    assert gp3.inputs["volumeBindingMode"] == "WaitForFirstConsumer"
    assert "cluster-ebs-csi" in gp3.depends_on
    # Every system (and its PVCs) waits for the class: it is part of the cluster's readiness.
    waits_for = transitive_dependencies(stack_runs["eks"].mocks, "airflow", RELEASE)
    assert "cluster-gp3" in waits_for
    # kind brings its own default class (local-path); the stack adds none there.
    assert stack_runs["kind"].mocks.of_type("kubernetes:storage.k8s.io/v1:StorageClass") == []


# --- images: pushed to ECR, pulled from there ---------------------------------------------------


def test_images_are_pushed_to_ecr_and_every_chart_pulls_from_there(stack_runs):
    run = stack_runs["eks"]
    repository = f"{REGISTRY}/orchbench/shared-ml"
    ecr = run.mocks.named("shared-ml-ecr", "aws:ecr/repository:Repository").inputs
    assert ecr["name"] == "orchbench/shared-ml"
    for extra in ("airflow", "prefect", "kubeflow"):
        push = run.mocks.named(f"shared-ml-push-{extra}")
        local = f"orchbench/shared-ml:0.1.0-{extra}"
        assert f"--tag {local} " in run.mocks.named(f"shared-ml-build-{extra}").inputs["create"]
        assert push.inputs["create"].endswith(
            f"docker tag {local} {repository}:0.1.0-{extra} && "
            f"docker push {repository}:0.1.0-{extra}"
        )
        assert {"shared-ml-ecr", f"shared-ml-build-{extra}"} <= push.depends_on
        assert run.resolved["images"][extra] == f"{repository}:0.1.0-{extra}"
    values = {d.inputs["name"]: d.inputs["values"] for d in run.mocks.of_type(RELEASE)}
    airflow = values["airflow"]
    assert airflow["defaultAirflowRepository"] == repository
    assert airflow["images"]["airflow"]["repository"] == repository
    assert airflow["images"]["pod_template"]["repository"] == repository
    assert airflow["images"]["airflow"]["pullPolicy"] == "Always"  # rebuilds reuse the tag
    worker = values["prefect-worker"]["worker"]
    assert worker["image"]["repository"] == repository
    job_template = json.loads(worker["config"]["baseJobTemplate"]["configuration"])
    image_variable = job_template["variables"]["properties"]["image"]
    assert image_variable["default"] == f"{repository}:0.1.0-prefect"
    # Every chart and manifest waits for the pushes.
    assert "shared-ml-push-airflow" in transitive_dependencies(run.mocks, "airflow", RELEASE)


def test_airflow_task_pods_take_their_image_from_the_chart_values(stack_runs):
    """The pod template names no image of its own: the chart's `pod_template_image` helper
    renders images.pod_template (ECR on EKS, asserted above; chart 1.22.0 _helpers.yaml)."""
    import yaml

    values = {
        d.inputs["name"]: d.inputs["values"] for d in stack_runs["eks"].mocks.of_type(RELEASE)
    }
    pod = yaml.safe_load(values["airflow"]["podTemplate"])
    images = {container["image"] for container in pod["spec"]["containers"]}
    assert images == {'{{ include "pod_template_image" . }}'}


FAKE_AWS = """#!/bin/sh
[ -n "$FAKE_AWS_FAIL" ] && { echo "Unable to locate credentials" >&2; exit 255; }
echo "ecr-token-123"
"""
FAKE_DOCKER = """#!/bin/sh
if [ "$1" = login ]; then
  read -r token || token=""
  [ -n "$token" ] || { echo "Error: Cannot perform an interactive login" >&2; exit 1; }
  echo "$* token=$token" >> "$FAKE_DOCKER_LOG"; exit 0
fi
echo "$*" >> "$FAKE_DOCKER_LOG"
"""


def run_push(tmp_path, fail_login: bool) -> tuple[int, list[str]]:
    for name, script in (("aws", FAKE_AWS), ("docker", FAKE_DOCKER)):
        tool = tmp_path / name
        tool.write_text(script)
        tool.chmod(0o755)
    log = tmp_path / "docker.log"
    log.touch()
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "FAKE_DOCKER_LOG": str(log)}
    if fail_login:
        env["FAKE_AWS_FAIL"] = "1"
    remote = f"{REGISTRY}/orchbench/shared-ml:0.1.0-airflow"
    script = push_command("orchbench/shared-ml:0.1.0-airflow", remote, "eu-west-1")
    result = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, timeout=30)
    return result.returncode, log.read_text().splitlines()


def test_push_step_logs_in_to_the_registry_then_tags_and_pushes(tmp_path):
    code, calls = run_push(tmp_path, fail_login=False)
    remote = f"{REGISTRY}/orchbench/shared-ml:0.1.0-airflow"
    assert code == 0
    assert calls == [
        f"login --username AWS --password-stdin {REGISTRY} token=ecr-token-123",
        f"tag orchbench/shared-ml:0.1.0-airflow {remote}",
        f"push {remote}",
    ]


def test_push_step_fails_without_credentials_and_pushes_nothing(tmp_path):
    code, calls = run_push(tmp_path, fail_login=True)
    assert code != 0
    assert calls == []


@pytest.mark.parametrize("account", ["", "None", "12345"])
def test_an_unknown_account_gives_no_registry(account):
    with pytest.raises(ValueError, match="12-digit AWS account id"):
        ecr_registry(account, "eu-west-1")


def test_registry_hosts_are_refused_as_the_ecr_repository_name():
    with pytest.raises(StackConfigError, match=r"image\.repository on EKS is the ECR repository"):
        parse_stack_config(
            {
                "orchbench:cluster": {"provider": "eks"},
                "orchbench:image": {"repository": "ghcr.io/orchbench/shared-ml"},
            }
        )


# --- IRSA: the task pods, and only they, reach the bucket ----------------------------------------


def test_artifact_role_trusts_the_task_pods_service_accounts(stack_runs):
    from infra.footprint import load_stack_file
    from infra.program import artifact_service_accounts

    run = stack_runs["eks"]
    role = run.mocks.named("storage-irsa", ROLE)
    expected = {
        f"system:serviceaccount:{ns}:{sa}"
        for ns, sa in artifact_service_accounts(load_stack_file("eks"))
    }
    assert "system:serviceaccount:kubeflow:pipeline-runner" in expected
    assert {s.split(":")[2] for s in expected} == {"airflow", "prefect", "kubeflow"}
    assert trust(role) == (OIDC_ARN, expected, "sts.amazonaws.com")


def test_artifact_role_reaches_the_bucket_and_nothing_else(stack_runs):
    run = stack_runs["eks"]
    policy = run.mocks.named("storage-irsa-bucket", "aws:iam/rolePolicy:RolePolicy").inputs
    assert policy["role"] == "storage-irsa-id"
    bucket_arn = "arn:aws:s3:::orchbench-artifacts-abc123"
    statements = json.loads(policy["policy"])["Statement"]
    resources = {s["Resource"] for s in statements}
    assert resources == {bucket_arn, f"{bucket_arn}/*"}
    actions = {a for s in statements for a in s["Action"]}
    assert {"s3:GetObject", "s3:PutObject", "s3:ListBucket"} <= actions
    assert not any("*" in a for a in actions)
    assert all(s["Effect"] == "Allow" for s in statements)
    tls = json.loads(run.mocks.named("storage-bucket-tls-only").inputs["policy"])["Statement"]
    assert tls[0]["Effect"] == "Deny"
    assert tls[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_each_trusted_service_account_is_annotated_after_its_system_exists(stack_runs):
    run = stack_runs["eks"]
    role_arn = run.mocks.named("storage-irsa", ROLE).outputs["arn"]
    _, subjects, _ = trust(run.mocks.named("storage-irsa", ROLE))
    patches = run.mocks.of_type(PATCH)
    patched = {
        f"system:serviceaccount:{p.inputs['metadata']['namespace']}:{p.inputs['metadata']['name']}"
        for p in patches
    }
    assert patched == subjects
    waits = {
        "airflow": "airflow",
        "prefect": "prefect-worker",
        "kubeflow": "kubeflow-platform-agnostic",
    }
    for patch in patches:
        metadata = patch.inputs["metadata"]
        assert metadata["annotations"] == {"eks.amazonaws.com/role-arn": role_arn}
        assert "labels" not in metadata  # the accounts' labels belong to Helm / KFP
        assert waits[metadata["namespace"]] in transitive_dependencies(run.mocks, patch.name, PATCH)
    assert run.resolved["artifactStore"]["roleArn"] == role_arn
    assert stack_runs["kind"].mocks.of_type(PATCH) == []


def region_botocore_resolves(env: dict[str, str], monkeypatch) -> str | None:
    """The region a pod's s3fs (aiobotocore -> botocore's config chain) signs with, given
    only `env`: none of this machine's AWS settings."""
    import botocore.session

    with monkeypatch.context() as pod:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                pod.delenv(name)
        pod.setenv("AWS_CONFIG_FILE", "/nonexistent/aws/config")
        pod.setenv("AWS_EC2_METADATA_DISABLED", "true")
        for name, value in env.items():
            pod.setenv(name, value)
        return botocore.session.Session().get_config_variable("region")


def test_task_pods_get_the_region_and_no_static_keys_on_eks(stack_runs, monkeypatch):
    for secret in stack_runs["eks"].mocks.of_type("kubernetes:core/v1:Secret"):
        if secret.inputs["metadata"]["name"] == "orchbench-artifacts":
            data = secret.inputs["stringData"]
            # Under the variable botocore reads (AWS_DEFAULT_REGION; AWS_REGION it ignores).
            assert region_botocore_resolves(data, monkeypatch) == "eu-west-1"
            assert data["ORCHBENCH_ARTIFACT_ROOT"] == "s3://orchbench-artifacts-abc123"
            assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(data)


def test_irsa_subjects_follow_the_templates_that_create_the_pods(monkeypatch):
    import infra.program as program

    monkeypatch.setattr(
        program,
        "read_pod_template",
        lambda: "apiVersion: v1\nkind: Pod\nspec:\n  serviceAccountName: airflow-worker\n",
    )
    monkeypatch.setattr(
        program,
        "read_base_job_template",
        lambda: {"variables": {"properties": {"service_account_name": {"default": "flows"}}}},
    )
    config = parse_stack_config(
        {"orchbench:cluster": {"provider": "eks"}, "orchbench:kubeflow": {"enabled": False}}
    )
    assert program.artifact_service_accounts(config) == [
        ("airflow", "airflow-worker"),
        ("prefect", "flows"),
    ]


def test_an_irsa_role_needs_a_subject():
    with pytest.raises(ValueError, match="at least one"):
        irsa_trust_policy(OIDC_ARN, MOCK_OIDC_ISSUER, [])
