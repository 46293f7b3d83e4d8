"""Namespaces and the RBAC that reaches them: each system's pods run where its own
permissions, policies, limits and secrets are.

Infra declares a namespace per system (default-deny ingress, same-namespace traffic, a
LimitRange, the artifact Secret); the charts and KFP's manifests install into a namespace
and create their RBAC there; the executors decide where task pods go. Every pair must
name the same namespace. (The Prefect worker's Role against the job template's namespace
is tests/infra/test_contract_prefect.py.)

Upstream facts, at the pinned versions:
- Airflow chart: with `multiNamespaceMode: false` the pod-launcher RBAC that lets the
  scheduler create task pods is a Role in the release namespace, and the KubernetesExecutor
  puts pods in `config.kubernetes_executor.namespace`, which the chart sets to
  '{{ .Release.Namespace }}' (chart/values.yaml; the multiNamespaceMode description in the
  1.22.0 values.schema.json: only `true` creates a ClusterRole).
- kubeflow/pipelines 2.17.0: env/platform-agnostic/kustomization.yaml installs everything
  in `kubeflow`; base/pipeline/pipeline-runner-sa.yaml is the ServiceAccount
  `pipeline-runner`, the one step pods run as unless a run names another
  (backend/src/apiserver/common/const.go `DefaultPipelineRunnerServiceAccount`).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from infra.components.common import ARTIFACT_SECRET_NAME
from infra.components.storage import IRSA_ROLE_ANNOTATION
from infra.config import KubeflowConfig
from tests.infra.mocking import (
    MOCK_OIDC_ISSUER,
    StackRun,
    helm_release,
)

KFP_FACTS = {"2.17.0": {"namespace": "kubeflow", "runner": "pipeline-runner"}}


def namespace_guards(run: StackRun, namespace: str) -> set[str]:
    """What infra put in place in `namespace`: kinds of the objects it declares there."""
    return {
        d.typ.rsplit(":", 1)[-1] + "/" + d.inputs["metadata"]["name"]
        for d in run.mocks.kubernetes_objects()
        if d.inputs.get("metadata", {}).get("namespace") == namespace
    }


def kfp_facts() -> dict[str, str]:
    facts = KFP_FACTS.get(KubeflowConfig().version)
    assert facts, f"KFP {KubeflowConfig().version}: read its manifests' namespace and runner"
    return facts


def test_every_system_installs_where_infra_isolated_and_sized_its_namespace(stack_run):
    namespaces = {
        chart: helm_release(stack_run.mocks, chart).namespace
        for chart in ("airflow", "prefect-server", "prefect-worker")
    }
    namespaces["kubeflow manifests"] = kfp_facts()["namespace"]
    for system, namespace in namespaces.items():
        guards = namespace_guards(stack_run, namespace)
        wanted = {
            "NetworkPolicy/default-deny-ingress",
            "NetworkPolicy/allow-same-namespace",
            "LimitRange/default-container-resources",
            f"Secret/{ARTIFACT_SECRET_NAME}",
        }
        assert wanted <= guards, f"{system} installs into {namespace}, missing {wanted - guards}"
    assert KubeflowConfig().namespace == kfp_facts()["namespace"]


def test_airflow_task_pods_go_where_the_schedulers_role_reaches(stack_run):
    release = helm_release(stack_run.mocks, "airflow")
    values = release.values
    assert values["executor"] == "KubernetesExecutor"
    # A namespaced Role for the scheduler, in the release namespace.
    assert values["multiNamespaceMode"] is False
    assert values["rbac"]["create"] is True and values["allowPodLaunching"] is True
    # Task pods follow the chart's kubernetes_executor.namespace (the release's) unless the
    # values move them; then they must stay in the release namespace.
    for section in ("kubernetes_executor", "kubernetes"):
        moved = values.get("config", {}).get(section, {}).get("namespace")
        assert moved in (None, release.namespace), f"config.{section}.namespace={moved}"
    template = yaml.safe_load(values["podTemplate"])  # the task pod template the chart gets
    assert template["metadata"].get("namespace") in (None, release.namespace)


def task_pod_accounts(run: StackRun) -> set[str]:
    """`system:serviceaccount:<namespace>:<account>` of every pod that reads or writes
    artifacts, read from what creates those pods (not from infra's config)."""
    airflow = helm_release(run.mocks, "airflow")
    template = yaml.safe_load(airflow.values["podTemplate"])
    airflow_account = template["spec"].get("serviceAccountName") or "default"
    worker = helm_release(run.mocks, "prefect-worker")
    job: dict[str, Any] = json.loads(
        worker.values["worker"]["config"]["baseJobTemplate"]["configuration"]
    )
    variables = job["variables"]["properties"]
    job_account = (variables.get("service_account_name") or {}).get("default") or "default"
    facts = kfp_facts()
    return {
        f"system:serviceaccount:{airflow.namespace}:{airflow_account}",
        f"system:serviceaccount:{variables['namespace']['default']}:{job_account}",
        f"system:serviceaccount:{facts['namespace']}:{facts['runner']}",
    }


def test_the_bucket_role_trusts_the_accounts_task_pods_run_as(stack_runs):
    """EKS: IRSA gives a pod the role its account is annotated with, if the role trusts that
    account: annotations, trust and the pods' own accounts must be the same set."""
    run = stack_runs["eks"]
    patches = run.mocks.of_type("kubernetes:core/v1:ServiceAccountPatch")
    annotated = {
        f"system:serviceaccount:{p.inputs['metadata']['namespace']}:{p.inputs['metadata']['name']}"
        for p in patches
    }
    (arn,) = {p.inputs["metadata"]["annotations"][IRSA_ROLE_ANNOTATION] for p in patches}
    (role,) = [r for r in run.mocks.of_type("aws:iam/role:Role") if r.outputs.get("arn") == arn]
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    trusted = set(statement["Condition"]["StringEquals"][f"{MOCK_OIDC_ISSUER}:sub"])
    assert trusted == annotated == task_pod_accounts(run)
