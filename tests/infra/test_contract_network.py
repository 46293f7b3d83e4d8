"""Ports and NetworkPolicies: every connection a pipeline needs is allowed, on the port the
server listens on, and the isolation still refuses the others.

The policies are the ones the program declares (under Pulumi's mocks); they are evaluated
with Kubernetes' NetworkPolicy semantics (networking.k8s.io/v1: a pod that any policy selects
for a direction is isolated in it and takes the union of their rules; a rule's peers and
ports must both match). The endpoints come from what each side declares: the URL a client
is given (the artifact Secret's AWS_ENDPOINT_URL, the Prefect worker's API URL), the Service
and Deployment infra creates behind it, the chart values and the upstream facts below.

Upstream facts, at the pinned versions:
- Airflow chart 1.22.0: the API server (Airflow 3's task execution API, which task pods
  call) listens on `ports.apiServer`, default 8080 (values.schema.json of the chart, in
  ../shared/schemas); task pods run in the release namespace (config.kubernetes_executor.
  namespace '{{ .Release.Namespace }}' in chart/values.yaml).
- prefect-server 2026.8.18172642: the Service is `common.names.fullname` of the release
  (charts/prefect-server/templates/service.yaml), port `service.port` to `service.targetPort`.
- kubeflow/pipelines 2.17.0 (manifests/kustomize): everything in namespace `kubeflow`
  (env/platform-agnostic/kustomization.yaml); the API server's Service `ml-pipeline` serves
  8888 (http) and 8887 (grpc) (base/pipeline/ml-pipeline-apiserver-service.yaml); the cache
  webhook is `containerPort: 8443, name: webhook-api` on pods `app: cache-server`
  (base/cache/cache-deployment.yaml), called by the Kubernetes API server, which is no pod.
  Upstream's own policies (KFP ships one for its SeaweedFS) can only add allowances to ours,
  so leaving them out makes this check stricter, not looser.
- prefect 3.9.1: a worker hands its own settings, PREFECT_API_URL included, to the Jobs it
  creates (prefect/workers/base.py, `BaseJobConfiguration._base_environment`), so flow-run
  pods call the URL the worker was given.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from infra.components.airflow import API_PORT as AIRFLOW_API_PORT
from infra.components.common import ARTIFACT_SECRET_NAME, NAMESPACE_NAME_LABEL
from infra.config import KubeflowConfig
from tests.infra.mocking import (
    StackRun,
    bitnami_fullname,
    deep_merge,
    helm_release,
    kubernetes_object,
    run_stack,
    whole_numbers,
)

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
KFP_FACTS = {
    "2.17.0": {
        "namespace": "kubeflow",
        "api": {"labels": {"app": "ml-pipeline"}, "ports": [8888, 8887]},
        # Services the runner reaches through port-forwards: name -> ports.
        "services": {"ml-pipeline": {8888, 8887}, "ml-pipeline-ui": {80}},
        "cache webhook": {"labels": {"app": "cache-server"}, "port": ("webhook-api", 8443)},
    }
}
PREFECT_SERVER_DEFAULTS = {"service": {"port": 4200, "targetPort": 4200}}
DNS = 53


@dataclass(frozen=True)
class Pod:
    """One end of a connection. `namespace` None: not a pod (the Kubernetes API server,
    a node): only a rule with no `from` peers admits it."""

    namespace: str | None
    labels: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)  # named container ports


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A label selector (matchLabels and matchExpressions); an empty one selects all."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def peer_admits(peer: dict[str, Any], policy_namespace: str, other: Pod) -> bool:
    if other.namespace is None or "ipBlock" in peer:
        return False  # pods here are addressed as pods; ipBlocks are not modelled
    namespace_labels = {NAMESPACE_NAME_LABEL: other.namespace}
    if "namespaceSelector" in peer:
        if not matches(peer["namespaceSelector"], namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return matches(peer.get("podSelector"), other.labels)


def port_admits(rule_ports: list[dict[str, Any]] | None, pod: Pod, port: int, protocol: str):
    if not rule_ports:
        return True
    for entry in rule_ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        wanted = entry.get("port")
        if wanted is None:
            return True
        number = pod.ports.get(wanted) if isinstance(wanted, str) else wanted
        if number is not None and number <= port <= entry.get("endPort", number):
            return True
    return False


def default_types(spec: dict[str, Any]) -> list[str]:
    """policyTypes when a policy leaves it out: Ingress, plus Egress if it has egress rules."""
    return ["Ingress", *(["Egress"] if "egress" in spec else [])]


def allowed(
    policies: list[dict[str, Any]],
    source: Pod,
    destination: Pod,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Whether `source` may open `port` on `destination`: egress of the one, ingress of the
    other, each isolated only where a policy selects that pod for that direction."""

    def direction(pod: Pod, other: Pod, kind: str, peers_key: str, port_pod: Pod) -> bool:
        selecting = [
            p
            for p in policies
            if p["metadata"]["namespace"] == pod.namespace
            and matches(p["spec"].get("podSelector"), pod.labels)
            and kind in p["spec"].get("policyTypes", default_types(p["spec"]))
        ]
        if not selecting:
            return True
        rules_key = kind.lower()
        return any(
            port_admits(rule.get("ports"), port_pod, port, protocol)
            and (
                not rule.get(peers_key)
                or any(
                    peer_admits(peer, p["metadata"]["namespace"], other) for peer in rule[peers_key]
                )
            )
            for p in selecting
            for rule in p["spec"].get(rules_key) or []
        )

    outbound = source.namespace is None or direction(
        source, destination, "Egress", "to", destination
    )
    inbound = destination.namespace is None or direction(
        destination, source, "Ingress", "from", destination
    )
    return outbound and inbound


def declared_policies(run: StackRun) -> list[dict[str, Any]]:
    return [
        whole_numbers({"metadata": d.inputs["metadata"], "spec": d.inputs["spec"]})
        for d in run.mocks.of_type(NETWORK_POLICY)
    ]


@dataclass(frozen=True)
class Flow:
    what: str
    source: Pod
    destination: Pod
    port: int
    protocol: str = "TCP"


def service_behind(run: StackRun, url: str) -> tuple[Pod, int]:
    """The pod a cluster URL (`http://<service>.<namespace>.svc...:<port>`) reaches, from the
    Service and Deployment the program declares, and the container port it lands on."""
    parts = urlsplit(url)
    name, namespace = parts.hostname.split(".")[:2]
    service = whole_numbers(kubernetes_object(run.mocks, "core/v1:Service", namespace, name).inputs)
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == parts.port]
    (deployment,) = [
        whole_numbers(d.inputs)
        for d in run.mocks.of_type("kubernetes:apps/v1:Deployment")
        if d.inputs["metadata"].get("namespace") == namespace
        and service["spec"]["selector"].items()
        <= d.inputs["spec"]["template"]["metadata"]["labels"].items()
    ]
    template = deployment["spec"]["template"]
    named = {
        p["name"]: p["containerPort"]
        for c in template["spec"]["containers"]
        for p in c.get("ports", [])
        if "name" in p
    }
    target = port.get("targetPort", port["port"])
    pod = Pod(namespace, template["metadata"]["labels"], named)
    return pod, named[target] if isinstance(target, str) else target


def prefect_server(run: StackRun) -> tuple[Pod, int, str]:
    """The server pod, the port it listens on, and the URL the worker is given."""
    server = helm_release(run.mocks, "prefect-server")
    values = deep_merge(PREFECT_SERVER_DEFAULTS, server.values)
    worker = helm_release(run.mocks, "prefect-worker")
    api_url = worker.values["worker"]["selfHostedServerApiConfig"]["apiUrl"]
    labels = {"app.kubernetes.io/name": "prefect-server", "app.kubernetes.io/component": "server"}
    return Pod(server.namespace, labels), values["service"]["targetPort"], api_url


def job_namespace(run: StackRun) -> str:
    """Where the worker creates flow-run Jobs: the namespace variable's default in the job
    template it registers (the deployments set none)."""
    worker = helm_release(run.mocks, "prefect-worker")
    template = json.loads(worker.values["worker"]["config"]["baseJobTemplate"]["configuration"])
    return template["variables"]["properties"]["namespace"]["default"]


def pipeline_flows(run: StackRun) -> list[Flow]:
    airflow = helm_release(run.mocks, "airflow")
    pod_template = yaml.safe_load(airflow.values["podTemplate"])
    task_pod = Pod(airflow.namespace, pod_template["metadata"].get("labels", {}))
    # The chart's pod labels (tier/component/release): same-namespace rules need no more.
    chart_pod = {"tier": "airflow", "release": airflow.name}
    api_server = Pod(airflow.namespace, {**chart_pod, "component": "api-server"})
    scheduler = Pod(airflow.namespace, {**chart_pod, "component": "scheduler"})
    database = Pod(airflow.namespace, {"app.kubernetes.io/name": "postgresql"})
    server, server_port, _ = prefect_server(run)
    worker = helm_release(run.mocks, "prefect-worker")
    worker_pod = Pod(worker.namespace, {"app.kubernetes.io/component": "worker"})
    job_pod = Pod(job_namespace(run), {"prefect.io/flow-run-id": "run"})
    kfp = KFP_FACTS[KubeflowConfig().version]
    step_pod = Pod(kfp["namespace"], {"pipelines.kubeflow.org/v2_component": "true"})
    api_pod = Pod(kfp["namespace"], kfp["api"]["labels"])
    webhook_name, webhook_port = kfp["cache webhook"]["port"]
    cache_pod = Pod(kfp["namespace"], kfp["cache webhook"]["labels"], {webhook_name: webhook_port})
    kube_apiserver = Pod(None)
    dns = Pod("kube-system", {"k8s-app": "kube-dns"})

    api_port = airflow.values.get("ports", {}).get("apiServer", AIRFLOW_API_PORT)
    flows = [
        Flow("airflow task pod -> API server (task execution API)", task_pod, api_server, api_port),
        Flow("airflow scheduler -> metadata DB", scheduler, database, 5432),
        Flow(
            "airflow scheduler -> Kubernetes API (launch task pods)", scheduler, kube_apiserver, 443
        ),
        Flow("prefect worker -> server API", worker_pod, server, server_port),
        Flow("prefect worker -> Kubernetes API (create Jobs)", worker_pod, kube_apiserver, 443),
        Flow("prefect flow-run job -> server API", job_pod, server, server_port),
        *[
            Flow(f"kfp step pod -> ml-pipeline:{p}", step_pod, api_pod, p)
            for p in kfp["api"]["ports"]
        ],
        Flow("Kubernetes API -> KFP cache webhook", kube_apiserver, cache_pod, webhook_port),
    ]
    for pod in (task_pod, scheduler, worker_pod, job_pod, step_pod):
        flows += [Flow(f"{pod.namespace} pod -> DNS/{p}", pod, dns, DNS, p) for p in ("UDP", "TCP")]
    endpoint = store_endpoint(run)
    for reader in (task_pod, job_pod, step_pod):
        if endpoint is None:  # EKS: S3 outside the cluster, reached through egress
            flows.append(Flow(f"{reader.namespace} pod -> S3", reader, Pod(None), 443))
        else:
            store, port = service_behind(run, endpoint)
            flows.append(Flow(f"{reader.namespace} pod -> artifact store", reader, store, port))
    return flows


def store_endpoint(run: StackRun) -> str | None:
    airflow = helm_release(run.mocks, "airflow")
    secret = kubernetes_object(run.mocks, "core/v1:Secret", airflow.namespace, ARTIFACT_SECRET_NAME)
    return secret.inputs["stringData"].get("AWS_ENDPOINT_URL")


def test_every_connection_a_pipeline_needs_is_allowed(stack_run):
    policies = declared_policies(stack_run)
    refused = [
        f.what
        for f in pipeline_flows(stack_run)
        if not allowed(policies, f.source, f.destination, f.port, f.protocol)
    ]
    assert not refused, f"the NetworkPolicies refuse: {refused}"


def test_the_isolation_still_refuses_other_namespaces(stack_run):
    """The other half of the contract, and proof the evaluation can say no."""
    policies = declared_policies(stack_run)
    airflow = helm_release(stack_run.mocks, "airflow")
    server, server_port, _ = prefect_server(stack_run)
    outsider = Pod("default", {"app": "anything"})
    kfp = KFP_FACTS[KubeflowConfig().version]
    refused = [
        (outsider, Pod(airflow.namespace, {"component": "api-server"}), AIRFLOW_API_PORT),
        (
            Pod(server.namespace),
            Pod(airflow.namespace, {"component": "api-server"}),
            AIRFLOW_API_PORT,
        ),
        (Pod(airflow.namespace), server, server_port),
        (outsider, Pod(kfp["namespace"], kfp["api"]["labels"]), kfp["api"]["ports"][0]),
    ]
    endpoint = store_endpoint(stack_run)
    if endpoint is not None:
        store, port = service_behind(stack_run, endpoint)
        refused.append((outsider, store, port))
    for source, destination, port in refused:
        assert not allowed(policies, source, destination, port), (source, destination, port)


def test_clients_are_given_the_service_and_port_the_server_has(stack_run):
    """The URLs handed to clients name the Service and port the chart or infra creates."""
    *_, api_url = prefect_server(stack_run)
    release = helm_release(stack_run.mocks, "prefect-server")
    values = deep_merge(PREFECT_SERVER_DEFAULTS, release.values)
    url = urlsplit(api_url)
    service = bitnami_fullname(release.name, release.chart, values)
    assert url.hostname == f"{service}.{release.namespace}.svc.cluster.local"
    assert url.port == values["service"]["port"]
    endpoint = store_endpoint(stack_run)
    if endpoint is not None:
        service_behind(stack_run, endpoint)  # the Service, port and pod exist


def served_ports(run: StackRun, schemas_dir) -> dict[tuple[str, str], set[int]]:
    """(namespace, Service) -> ports, for the Services the runner and clients are sent to.
    The Airflow chart names its API server Service `<release>-api-server` (useStandardNaming
    off; tests/infra/test_cluster_airflow_contracts.py cites the rule) on `ports.apiServer`."""
    schema = json.loads((schemas_dir / "airflow-chart-1.22.0.values.schema.json").read_text())
    airflow = helm_release(run.mocks, "airflow")
    assert not airflow.values.get("useStandardNaming"), "add the standard naming rule here"
    default = schema["properties"]["ports"]["properties"]["apiServer"]["default"]
    api_port = airflow.values.get("ports", {}).get("apiServer", default)
    server = helm_release(run.mocks, "prefect-server")
    values = deep_merge(PREFECT_SERVER_DEFAULTS, server.values)
    kfp = KFP_FACTS[KubeflowConfig().version]
    return {
        (airflow.namespace, f"{airflow.name}-api-server"): {api_port},
        (server.namespace, bitnami_fullname(server.name, server.chart, values)): {
            values["service"]["port"]
        },
        **{(kfp["namespace"], name): ports for name, ports in kfp["services"].items()},
    }


def test_what_infra_exports_reaches_services_the_servers_have(kind_run, schemas_dir):
    """The in-cluster URLs and the port-forwards the runner uses (`orchbench` reaches each
    system through them) name Services and ports that exist, on the local port exported."""
    served = served_ports(kind_run, schemas_dir)
    for system in ("airflow", "prefect", "kubeflow"):
        exported = kind_run.resolved[system]
        url = urlsplit(exported["url"])
        service, namespace = url.hostname.split(".")[:2]
        assert url.port in served.get((namespace, service), set()), (system, exported["url"])
        forwards = [exported["portForward"], exported.get("apiPortForward")]
        for command in filter(None, forwards):
            namespace, service, remote = re.fullmatch(
                r"kubectl -n (\S+) port-forward svc/(\S+) \d+:(\d+)", command
            ).groups()
            assert int(remote) in served.get((namespace, service), set()), (system, command)
        local_port = urlsplit(exported["localUrl"]).port
        assert f" {local_port}:" in exported["portForward"], (system, exported["localUrl"])


def test_an_egress_policy_without_dns_would_cut_every_pipeline_off(kind_run):
    """Egress is open today; the day a policy isolates egress, DNS must come with it."""
    airflow = helm_release(kind_run.mocks, "airflow")
    deny_egress = {
        "metadata": {"name": "default-deny-egress", "namespace": airflow.namespace},
        "spec": {"podSelector": {}, "policyTypes": ["Egress"]},
    }
    policies = [*declared_policies(kind_run), deny_egress]
    refused = {
        f.what
        for f in pipeline_flows(kind_run)
        if not allowed(policies, f.source, f.destination, f.port, f.protocol)
    }
    assert f"{airflow.namespace} pod -> DNS/UDP" in refused


def test_a_store_no_system_reads_admits_no_one():
    """An allowance for no namespace must not turn into a rule without sources: in a
    NetworkPolicy an empty `from` admits every pod of the cluster."""
    run = run_stack(
        "kind",
        {
            "orchbench:cluster": {"provider": "kind"},
            **{f"orchbench:{s}": {"enabled": False} for s in ("airflow", "prefect", "kubeflow")},
        },
    )
    store, port = service_behind(run, run.resolved["artifactStore"]["endpoint"])
    for outsider in (Pod("default", {"app": "anything"}), Pod("airflow")):
        assert not allowed(declared_policies(run), outsider, store, port), outsider
