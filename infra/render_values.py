"""What `pulumi up` would hand Helm and kustomize, written to files without the Pulumi engine.

    python -m infra.render_values --stack kind --out DIR

Runs the real program (`infra.program.deploy`, from `Pulumi.<stack>.yaml`) under Pulumi's
unit-test mocks, which record every resource's inputs instead of creating it, and writes:

- `DIR/<release>.values.yaml`: the values of each `helm.v3.Release`, exactly as declared;
- `DIR/index.json`: per release its name, chart, version, repository, namespace and values
  file; per kustomize `Directory` its name and remote target (`<repo>//<path>?ref=<tag>`),
  in declaration order.

The e2e workflow's pre-flight renders each release with `helm template` at the pinned chart
version (Helm also checks the values against the chart's values.schema.json) and each target
with `kubectl kustomize`, then validates the output (`infra.validate_manifests`), all before
`pulumi up`. Generated secrets are mock values here; the charts only see Secret names.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

from infra.manifest_images import images_in

RELEASE = "kubernetes:helm.sh/v3:Release"
KUSTOMIZE_DIRECTORY = "kubernetes:kustomize/v2:Directory"
# How the mocks receive a value marked secret (pulumi.runtime.rpc's signature keys).
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def _plain(value: Any) -> Any:
    """``value`` as the program declared it: secret wrappers removed, and whole numbers as
    ints again (inputs reach the mocks as protobuf Struct numbers, all floats: 50000.0)."""
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return _plain(value.get("value"))
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Placeholders for what AWS would answer on the EKS stack (IRSA role ARNs end up in values).
_MOCK_ACCOUNT = "123456789012"
_MOCK_OIDC_ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/RENDERVALUES"


def _fake(name: str, length: int) -> str:
    return hashlib.sha256(f"render-values:{name}".encode()).hexdigest()[:length]


@dataclass
class Declared:
    order: int
    typ: str
    name: str
    inputs: dict[str, Any]


class _RecordingMocks(pulumi.runtime.Mocks):
    """Echo each resource's inputs as its outputs, plus the few outputs the program reads."""

    def __init__(self) -> None:
        self.declared: list[Declared] = []
        self._lock = threading.Lock()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = _plain(dict(args.inputs))
        outputs = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = _fake(args.name, int(inputs.get("length", 32)))
        elif args.typ == "random:index/randomBytes:RandomBytes":
            raw = hashlib.sha256(args.name.encode()).digest()[: int(inputs["length"])]
            outputs["base64"], outputs["hex"] = base64.b64encode(raw).decode(), raw.hex()
        elif args.typ == "command:local:Command":
            outputs["stdout"] = "apiVersion: v1\nkind: Config\nclusters: []\n"
        elif args.typ == "eks:index:Cluster":  # the EKS stack reads these
            outputs["kubeconfigJson"] = '{"apiVersion": "v1", "kind": "Config"}'
            outputs["oidcIssuer"] = _MOCK_OIDC_ISSUER
            outputs["oidcProviderArn"] = (
                f"arn:aws:iam::{_MOCK_ACCOUNT}:oidc-provider/{_MOCK_OIDC_ISSUER}"
            )
        elif args.typ == "aws:iam/role:Role":
            outputs["arn"] = f"arn:aws:iam::{_MOCK_ACCOUNT}:role/{args.name}"
        elif args.typ == "aws:s3/bucket:Bucket":
            outputs["bucket"] = f"{inputs.get('bucketPrefix', 'bucket-')}mock"
            outputs["arn"] = f"arn:aws:s3:::{outputs['bucket']}"
        with self._lock:
            self.declared.append(Declared(len(self.declared), args.typ, args.name, inputs))
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": _MOCK_ACCOUNT, "arn": "", "userId": "", "id": _MOCK_ACCOUNT}
        return {}


def declared_resources(stack: str, infra_dir: Path | None = None) -> list[Declared]:
    """Every resource `infra.program.deploy` declares for the stack file, under mocks."""
    from infra.footprint import INFRA_DIR, load_stack_file
    from infra.program import deploy

    config = load_stack_file(stack, infra_dir or INFRA_DIR)
    mocks = _RecordingMocks()
    # set_mocks first: every resource the program creates must reach these mocks.
    pulumi.runtime.set_mocks(mocks, project="orchbench", stack=stack, preview=False)

    @pulumi.runtime.test
    def program() -> pulumi.Output:
        return pulumi.Output.from_input(deploy(config))

    program()
    return sorted(mocks.declared, key=lambda d: d.order)


def index_of(resources: list[Declared]) -> dict[str, Any]:
    """The releases (with their values) and kustomize targets among the declared resources."""
    releases, kustomizations = [], []
    for resource in resources:
        if resource.typ == RELEASE:
            inputs = resource.inputs
            repo = (inputs.get("repositoryOpts") or {}).get("repo")
            missing = [k for k in ("name", "chart", "version", "namespace") if not inputs.get(k)]
            if missing or not repo:
                raise ValueError(
                    f"release {resource.name}: no {', '.join(missing or ['repositoryOpts.repo'])}"
                    " declared; the pre-flight renders only pinned charts from a repository"
                )
            releases.append(
                {
                    "name": inputs["name"],
                    "chart": inputs["chart"],
                    "version": inputs["version"],
                    "repo": repo,
                    "namespace": inputs["namespace"],
                    "values": inputs.get("values") or {},
                }
            )
        elif resource.typ == KUSTOMIZE_DIRECTORY:
            kustomizations.append({"name": resource.name, "target": resource.inputs["directory"]})
    # Images of the pods the program declares itself (not through a chart), e.g. SeaweedFS:
    # the pre-flight checks that every image the cluster will pull exists.
    images = sorted(
        {
            image
            for resource in resources
            if resource.typ.startswith("kubernetes:") and resource.typ != RELEASE
            for image in images_in(resource.inputs)
        }
    )
    return {"releases": releases, "kustomizations": kustomizations, "images": images}


def write_rendered(index: dict[str, Any], out: Path) -> Path:
    """Write each release's values file and index.json under ``out``; return index.json."""
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for release in index["releases"]:
        values_file = f"{release['name']}.values.yaml"
        text = yaml.safe_dump(release["values"], sort_keys=False, default_flow_style=False)
        (out / values_file).write_text(text, encoding="utf-8")
        entries.append(
            {k: v for k, v in release.items() if k != "values"} | {"values": values_file}
        )
    document = {
        "releases": entries,
        "kustomizations": index["kustomizations"],
        "images": index.get("images", []),
    }
    path = out / "index.json"
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.render_values", description=__doc__)
    parser.add_argument("--stack", default="kind", help="stack file Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    args = parser.parse_args(argv)
    try:
        index = index_of(declared_resources(args.stack))
    except (OSError, ValueError) as err:  # a missing stack file, an invalid config
        print(f"render_values: {err}", file=sys.stderr)
        return 2
    path = write_rendered(index, args.out)
    print(
        f"{path}: {len(index['releases'])} release(s), "
        f"{len(index['kustomizations'])} kustomization(s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
