"""Validate rendered Kubernetes manifests against one Kubernetes version's schemas, offline.

    python -m infra.validate_manifests --kubernetes-version 1.33.1 FILE...

Every document of every file (multi-document YAML, as `helm template` and `kubectl kustomize`
print) is checked with `kubernetes-validate` in strict mode: a wrong type, a missing required
field or an unknown field fails. A kind with no schema in that version (a custom resource, or
an API removed by then) fails too, rather than passing unchecked. Exit 0 when every document
is valid, 1 otherwise (each problem named by file, kind and name), 2 on unreadable input.

kubernetes-validate (PyPI, in uv.lock) ships the schemas, so nothing is downloaded, and the
same command runs here and in the e2e workflow's pre-flight.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import kubernetes_validate
import yaml
from kubernetes_validate.utils import (
    SchemaNotFoundError,
    ValidationError,
    VersionNotSupportedError,
)


def _name(document: dict) -> str:
    metadata = document.get("metadata") or {}
    namespace = f"{metadata['namespace']}/" if metadata.get("namespace") else ""
    return f"{document.get('kind', '?')} {namespace}{metadata.get('name', '?')}"


def problems_in(documents: Iterable[object], version: str, source: str) -> tuple[int, list[str]]:
    """(how many documents were checked, what is wrong with them)."""
    checked, problems = 0, []
    for document in documents:
        if document is None:  # an empty document between `---` separators
            continue
        if not isinstance(document, dict) or "kind" not in document:
            problems.append(f"{source}: not a Kubernetes object: {str(document)[:80]!r}")
            continue
        checked += 1
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except SchemaNotFoundError:
            problems.append(
                f"{source}: {_name(document)}: no schema for {document.get('apiVersion')} "
                f"{document['kind']} in Kubernetes {version} (a custom resource, or an API "
                "that version does not serve)"
            )
        except ValidationError as err:
            where = ".".join(str(p) for p in err.path) or "(top level)"
            problems.append(f"{source}: {_name(document)}: {where}: {err.message}")
    return checked, problems


def validate_files(paths: list[Path], version: str) -> tuple[int, list[str]]:
    checked, problems = 0, []
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            count, found = problems_in(yaml.safe_load_all(handle), version, str(path))
        if count == 0:
            found.append(f"{path}: no Kubernetes object in it (did the render fail?)")
        checked += count
        problems += found
    return checked, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.validate_manifests", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--kubernetes-version", required=True, help="e.g. 1.33.1 (no v)")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    version = args.kubernetes_version.removeprefix("v")
    try:
        checked, problems = validate_files(args.files, version)
    except (OSError, yaml.YAMLError) as err:
        print(f"validate_manifests: {err}", file=sys.stderr)
        return 2
    except VersionNotSupportedError:
        print(
            f"validate_manifests: kubernetes-validate has no schemas for Kubernetes {version}",
            file=sys.stderr,
        )
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    print(
        f"{checked} object(s) in {len(args.files)} file(s) checked against Kubernetes "
        f"{version}: {len(problems)} problem(s)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
