"""What every system gets: its own namespace, ingress isolation and default container limits."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.config import Resources

MANAGED_BY = {"app.kubernetes.io/part-of": "orchbench", "app.kubernetes.io/managed-by": "pulumi"}

# Pod Security Admission: enforce `baseline` (no privileged/host access) everywhere, and warn and
# audit on `restricted` so any upstream container that is not fully hardened shows up in events.
POD_SECURITY_LABELS = {
    "pod-security.kubernetes.io/enforce": "baseline",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}

# The label every namespace carries automatically (Kubernetes >= 1.21): select peers by it.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def port_forward_command(namespace: str, service: str, local_port: int, remote_port: int) -> str:
    return f"kubectl -n {namespace} port-forward svc/{service} {local_port}:{remote_port}"


@dataclass(frozen=True)
class IngressAllowance:
    """One extra hole in a namespace's default-deny ingress policy."""

    name: str
    ports: list[int | str]
    from_namespaces: list[str] = field(default_factory=list)
    pod_selector: dict[str, str] = field(default_factory=dict)
    from_anywhere: bool = False


def default_deny_ingress(namespace: str) -> dict:
    return {
        "metadata": {"name": "default-deny-ingress", "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def allow_same_namespace(namespace: str) -> dict:
    return {
        "metadata": {"name": "allow-same-namespace", "namespace": namespace},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
        },
    }


def allowance_policy(namespace: str, allowance: IngressAllowance) -> dict | None:
    """The NetworkPolicy for one allowance; None when it admits no one (no source namespace
    and not from anywhere): a rule with an empty `from` would admit every pod instead."""
    if not allowance.from_anywhere and not allowance.from_namespaces:
        return None
    rule: dict = {"ports": [{"protocol": "TCP", "port": port} for port in allowance.ports]}
    if not allowance.from_anywhere:
        rule["from"] = [
            {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: source}}}
            for source in allowance.from_namespaces
        ]
    selector = {"matchLabels": allowance.pod_selector} if allowance.pod_selector else {}
    return {
        "metadata": {"name": allowance.name, "namespace": namespace},
        "spec": {"podSelector": selector, "policyTypes": ["Ingress"], "ingress": [rule]},
    }


def default_limits(namespace: str, defaults: Resources) -> dict:
    """A LimitRange so containers nobody sized (task pods, upstream manifests) still get limits."""
    return {
        "metadata": {"name": "default-container-resources", "namespace": namespace},
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "defaultRequest": {
                        "cpu": defaults.cpu_request,
                        "memory": defaults.memory_request,
                    },
                    "default": {"cpu": defaults.cpu_limit, "memory": defaults.memory_limit},
                }
            ]
        },
    }


class SystemNamespace(pulumi.ComponentResource):
    """A namespace that only its own pods (plus listed exceptions) may reach.

    Egress stays open: pods need DNS, the Kubernetes API (executors and workers launch pods) and
    the artifact store. `kubectl port-forward` is not subject to NetworkPolicy, so the UIs
    stay reachable for whoever has RBAC on the namespace.
    """

    def __init__(
        self,
        name: str,
        namespace: str,
        default_container: Resources,
        allowances: list[IngressAllowance] | None = None,
        create_namespace: bool = True,
        depends_on: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("orchbench:infra:SystemNamespace", name, None, opts)
        # A component's own depends_on does not reach its children: pass it down explicitly.
        child = pulumi.ResourceOptions(parent=self, depends_on=depends_on or [])
        self.name = namespace
        depends: list[pulumi.Resource] = [] if create_namespace else list(depends_on or [])
        if create_namespace:
            self.namespace = k8s.core.v1.Namespace(
                name,
                metadata={
                    "name": namespace,
                    "labels": {**MANAGED_BY, **POD_SECURITY_LABELS, "orchbench/system": name},
                },
                opts=child,
            )
            depends.append(self.namespace)
        scoped = pulumi.ResourceOptions(parent=self, depends_on=depends)

        policies = [default_deny_ingress(namespace), allow_same_namespace(namespace)]
        policies += [p for a in allowances or [] if (p := allowance_policy(namespace, a))]
        self.network_policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy['metadata']['name']}",
                metadata={**policy["metadata"], "labels": MANAGED_BY},
                spec=policy["spec"],
                opts=scoped,
            )
            for policy in policies
        ]
        limit_range = default_limits(namespace, default_container)
        self.limit_range = k8s.core.v1.LimitRange(
            f"{name}-default-container-resources",
            metadata={**limit_range["metadata"], "labels": MANAGED_BY},
            spec=limit_range["spec"],
            opts=scoped,
        )
        self.ready: list[pulumi.Resource] = [*depends, self.limit_range, *self.network_policies]
        self.register_outputs({"namespace": namespace})


def pod_security_context(uid: int, gid: int, fs_group: int | None = None) -> dict:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": gid,
        "fsGroup": gid if fs_group is None else fs_group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(read_only_root: bool = True) -> dict:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


ARTIFACT_SECRET_NAME = "orchbench-artifacts"


def artifact_secret(
    name: str,
    namespace: str,
    env: dict[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.Secret:
    """Copy the artifact-store settings into a system's namespace (Secrets don't cross them)."""
    return k8s.core.v1.Secret(
        f"{name}-artifact-store",
        metadata={"name": ARTIFACT_SECRET_NAME, "namespace": namespace, "labels": MANAGED_BY},
        type="Opaque",
        string_data=env,
        opts=opts,
    )
