"""Every container image a stack will pull, so the e2e workflow can check each one exists
before `pulumi up` (a missing tag otherwise shows up as ImagePullBackOff minutes later).

    python -m infra.manifest_images [--index F] [--dockerfile F] [--kind-config F]
                                    [--skip-repository R] FILE...

FILEs are rendered manifests (`helm template`, `kubectl kustomize`): every `image` of every
`containers`, `initContainers` and `ephemeralContainers` entry anywhere in a document, so
custom resources that embed pod specs count too. `--dockerfile` adds the defaults of its
`ARG *_IMAGE=` lines (the build's base images), `--kind-config` the node images of a kind
config, `--index` the `images` of `python -m infra.render_values`'s index.json (pods the
program declares itself, outside any chart). `--skip-repository` leaves out images built by the run itself (not pulled). Prints
one reference per line, sorted; exit 2 on unreadable input.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
DOCKERFILE_IMAGE_ARG = re.compile(r"^ARG\s+\w*IMAGE\w*=(\S+)\s*$", re.MULTILINE)


# Images a container starts itself, named in its env or args: KFP's API server takes its
# driver and launcher images as V2_DRIVER_IMAGE / V2_LAUNCHER_IMAGE, Argo's workflow
# controller its executor image as --executor-image (kubeflow/pipelines 2.17.0 manifests).
IMAGE_ARGS = ("--executor-image",)


def _container_images(container: dict) -> Iterator[str]:
    if isinstance(container.get("image"), str):
        yield container["image"]
    for variable in container.get("env") or []:
        name, value = variable.get("name", ""), variable.get("value")
        if name.endswith("_IMAGE") and isinstance(value, str) and value.strip():
            yield value.strip()
    args = [str(a) for a in container.get("args") or []]
    for i, arg in enumerate(args):
        flag, sep, value = arg.partition("=")
        if flag in IMAGE_ARGS:
            if sep:
                yield value
            elif i + 1 < len(args):
                yield args[i + 1]


def images_in(node: object) -> Iterator[str]:
    """Every image of every container list entry under ``node``, at any depth: its own,
    and those it names in its env or args (IMAGE_ARGS)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in CONTAINER_LISTS and isinstance(value, list):
                for container in value:
                    if isinstance(container, dict):
                        yield from _container_images(container)
            yield from images_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from images_in(item)


def manifest_images(paths: list[Path]) -> set[str]:
    found: set[str] = set()
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            for document in yaml.safe_load_all(handle):
                found.update(images_in(document))
    return found


def dockerfile_images(path: Path) -> set[str]:
    return set(DOCKERFILE_IMAGE_ARG.findall(path.read_text(encoding="utf-8")))


def kind_node_images(path: Path) -> set[str]:
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {n["image"] for n in config.get("nodes") or [] if isinstance(n, dict) and "image" in n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.manifest_images", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--index", type=Path, action="append", default=[])
    parser.add_argument("--dockerfile", type=Path, action="append", default=[])
    parser.add_argument("--kind-config", type=Path, action="append", default=[])
    parser.add_argument("--skip-repository", action="append", default=[])
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    try:
        images = manifest_images(args.files)
        for index in args.index:
            images |= set(json.loads(index.read_text(encoding="utf-8")).get("images", []))
        for dockerfile in args.dockerfile:
            images |= dockerfile_images(dockerfile)
        for kind_config in args.kind_config:
            images |= kind_node_images(kind_config)
    except (OSError, ValueError, yaml.YAMLError) as err:
        print(f"manifest_images: {err}", file=sys.stderr)
        return 2
    skipped = tuple(f"{r.rstrip(':')}:" for r in args.skip_repository)
    for image in sorted(i for i in images if not i.startswith(skipped)):
        print(image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
