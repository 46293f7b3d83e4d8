"""Pulumi mocks for the infra tests: run the real program, record every declared resource."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"
# CI runs in a fresh clone with a copy of shared/ beside it; a user's clone has none.
# ORCHBENCH_SCHEMAS_DIR points elsewhere (or nowhere, to see the skip).
SCHEMAS_DIR = Path(os.environ.get("ORCHBENCH_SCHEMAS_DIR", REPO_ROOT.parent / "shared" / "schemas"))
STACKS = ("kind", "eks")
RELEASE = "kubernetes:helm.sh/v3:Release"
# Every object the program builds itself is validated against this Kubernetes version
# (the kind node image in infra/kind/cluster.yaml).
KUBERNETES_VERSION = "1.33.0"
# What the mocked AWS answers: the account (getCallerIdentity) and the EKS OIDC issuer.
MOCK_AWS_ACCOUNT = "123456789012"
MOCK_OIDC_ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/MOCKISSUER"


# How the mocks receive a value marked secret: {SPECIAL_SIG_KEY: SECRET_SIG, "value": ...}.
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def unwrap_secrets(value: Any, path: str = "", found: list[str] | None = None) -> Any:
    """Return `value` with secret wrappers removed; append the paths that were secret."""
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            if found is not None:
                found.append(path)
            return unwrap_secrets(value.get("value"), path, found)
        return {k: unwrap_secrets(v, f"{path}.{k}" if path else k, found) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


def fake_secret(name: str, length: int = 32) -> str:
    """Mocked random output: unique per resource, obviously not a chart default."""
    return hashlib.sha256(f"mock:{name}".encode()).hexdigest()[:length]


@dataclass
class Declared:
    typ: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    secret_paths: list[str] = field(default_factory=list)  # inputs that arrived as secrets
    depends_on: set[str] = field(default_factory=set)  # names of explicit dependencies
    parent: str = ""  # name of the parent resource
    provider: str = ""  # provider reference (urn::id) the resource is created with


def _name_of(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


_registration = threading.local()


class RecordingMonitor(MockMonitor):
    """Also records each resource's explicit dependencies and parent (ordering tests)."""

    def RegisterResource(self, request):
        # Registrations run concurrently on executor threads; new_resource runs on this one.
        _registration.request = request
        try:
            return super().RegisterResource(request)
        finally:
            _registration.request = None


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.declared: list[Declared] = []
        self._lock = threading.Lock()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        secret_paths: list[str] = []
        inputs = unwrap_secrets(dict(args.inputs), found=secret_paths)
        outputs = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = fake_secret(args.name, int(args.inputs.get("length", 32)))
        elif args.typ == "random:index/randomBytes:RandomBytes":
            raw = hashlib.sha256(f"mock:{args.name}".encode()).digest()[
                : int(args.inputs["length"])
            ]
            outputs["base64"] = base64.b64encode(raw).decode()
            outputs["hex"] = raw.hex()
        elif args.typ == "command:local:Command":
            outputs["stdout"] = "apiVersion: v1\nkind: Config\nclusters: []\n"
        elif args.typ == "eks:index:Cluster":
            outputs["kubeconfigJson"] = '{"apiVersion": "v1", "kind": "Config"}'
            outputs["oidcIssuer"] = MOCK_OIDC_ISSUER
            outputs["oidcProviderArn"] = (
                f"arn:aws:iam::{MOCK_AWS_ACCOUNT}:oidc-provider/{MOCK_OIDC_ISSUER}"
            )
        elif args.typ == "aws:iam/role:Role":
            outputs["arn"] = f"arn:aws:iam::{MOCK_AWS_ACCOUNT}:role/{args.name}"
        elif args.typ == "aws:s3/bucket:Bucket":
            outputs["bucket"] = f"{args.inputs.get('bucketPrefix', 'bucket-')}abc123"
            outputs["arn"] = f"arn:aws:s3:::{outputs['bucket']}"
        declared = Declared(args.typ, args.name, inputs, outputs, secret_paths)
        declared.provider = args.provider or ""
        request = getattr(_registration, "request", None)
        if request is not None and request.name == args.name:
            declared.depends_on = {_name_of(urn) for urn in request.dependencies}
            declared.parent = _name_of(request.parent) if request.parent else ""
        with self._lock:
            self.declared.append(declared)
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": MOCK_AWS_ACCOUNT, "arn": "", "id": MOCK_AWS_ACCOUNT, "userId": ""}
        return {}

    # --- queries used by the tests ---------------------------------------------------------

    def of_type(self, typ: str) -> list[Declared]:
        return [d for d in self.declared if d.typ == typ]

    def named(self, name: str, typ: str | None = None) -> Declared:
        matches = [d for d in self.declared if d.name == name and typ in (None, d.typ)]
        assert len(matches) == 1, f"expected one resource named {name}, got {len(matches)}"
        return matches[0]

    def types(self) -> set[str]:
        return {d.typ for d in self.declared}

    def kubernetes_objects(self) -> list[Declared]:
        """Objects the program builds itself (not Helm releases, kustomize dirs, providers)."""
        return [
            d
            for d in self.declared
            if d.typ.startswith("kubernetes:")
            and not d.typ.startswith(("kubernetes:helm.sh/", "kubernetes:kustomize/"))
        ]

    def random_values(self) -> set[str]:
        values = set()
        for d in self.declared:
            if d.typ.startswith("random:"):
                values |= {str(d.outputs.get(k)) for k in ("result", "base64") if k in d.outputs}
        return values


@dataclass
class StackRun:
    stack: str
    mocks: RecordingMocks
    exports: dict[str, Any]
    resolved: dict[str, Any]


def run_under_mocks(build: Callable[[], Any], stack: str = "test") -> tuple[RecordingMocks, Any]:
    """Run `build` as a Pulumi program under mocks; return the mocks and its resolved result.

    set_mocks comes first so every resource `build` creates is registered with the mocks, and
    `pulumi.runtime.test` waits for all of them (and for outputs returned by `build`).
    """
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(
        mocks, project="orchbench", stack=stack, preview=False, monitor=RecordingMonitor(mocks)
    )
    holder: dict[str, Any] = {}

    @pulumi.runtime.test
    def program():
        result = build()
        holder["raw"] = result
        return pulumi.Output.from_input(result).apply(lambda r: holder.update(resolved=r))

    program()
    return mocks, holder.get("resolved")


def run_stack(stack: str, config: dict[str, Any] | None = None) -> StackRun:
    """Run infra.program.deploy for a stack file (or an explicit config) under mocks."""
    from infra.config import parse_stack_config
    from infra.footprint import load_stack_file
    from infra.program import deploy

    stack_config = parse_stack_config(config) if config is not None else load_stack_file(stack)
    exports: dict[str, Any] = {}

    def build():
        exports.update(deploy(stack_config))
        return exports

    mocks, resolved = run_under_mocks(build, stack)
    return StackRun(stack, mocks, exports, resolved)


def transitive_dependencies(mocks: RecordingMocks, name: str, typ: str | None = None) -> set[str]:
    """Names a resource waits for: explicit dependencies and their parents' children, closed."""
    by_name: dict[str, list[Declared]] = {}
    for declared in mocks.declared:
        by_name.setdefault(declared.name, []).append(declared)
    children: dict[str, list[Declared]] = {}
    for declared in mocks.declared:
        children.setdefault(declared.parent, []).append(declared)

    seen: set[str] = set()
    frontier = list(mocks.named(name, typ).depends_on)
    while frontier:
        current = frontier.pop()
        if current in seen:
            continue
        seen.add(current)
        for declared in by_name.get(current, []):
            frontier.extend(declared.depends_on)
            # Depending on a component means depending on everything under it.
            frontier.extend(child.name for child in children.get(current, []))
    return seen


# --- cross-component lookups (the contract tests) ---------------------------------------------


def whole_numbers(value: Any) -> Any:
    """``value`` with whole floats as ints: inputs reach the mocks as protobuf numbers
    (50000 arrives as 50000.0), while Kubernetes and the charts compare integers."""
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def kubernetes_object(mocks: RecordingMocks, kind: str, namespace: str, name: str) -> Declared:
    """The one object of this kind (e.g. "core/v1:Secret") the program declares under this
    namespace and name (what a consumer refers to, not the Pulumi resource name)."""
    matches = [
        d
        for d in mocks.of_type(f"kubernetes:{kind}")
        if d.inputs.get("metadata", {}).get("namespace") == namespace
        and d.inputs.get("metadata", {}).get("name") == name
    ]
    assert len(matches) == 1, f"expected one {kind} {namespace}/{name}, got {len(matches)}"
    return matches[0]


@dataclass(frozen=True)
class DeclaredRelease:
    name: str  # the Helm release name (not the Pulumi resource name)
    chart: str
    namespace: str
    values: dict[str, Any]


def helm_release(mocks: RecordingMocks, chart: str) -> DeclaredRelease:
    """The one Helm release of `chart`, with its values as Helm would receive them."""
    releases = [d for d in mocks.of_type(RELEASE) if d.inputs.get("chart") == chart]
    assert len(releases) == 1, f"expected one release of chart {chart}, got {len(releases)}"
    inputs = releases[0].inputs
    return DeclaredRelease(
        inputs["name"], chart, inputs["namespace"], whole_numbers(inputs.get("values", {}))
    )


def deep_merge(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """What Helm does with a chart's values.yaml and the release's values: maps merge key by
    key, anything else from `overrides` replaces the default."""
    merged = dict(defaults)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def bitnami_fullname(release: str, chart: str, values: dict[str, Any]) -> str:
    """bitnami `common.names.fullname` (bitnami/charts bitnami/common/templates/_names.tpl,
    read at the search index's stored revision; prefect-helm 2026.8.18172642 pins common
    2.41.0, and the bitnami postgresql subcharts name their primary Service with it in
    standalone mode, `postgresql.v1.primary.fullname`):
    fullnameOverride, else the release when it contains the chart's name (or nameOverride),
    else `<release>-<name>`; `trunc 63 | trimSuffix "-"`."""
    if values.get("fullnameOverride"):
        return values["fullnameOverride"][:63].removesuffix("-")
    name = values.get("nameOverride") or chart
    return (release if name in release else f"{release}-{name}")[:63].removesuffix("-")
