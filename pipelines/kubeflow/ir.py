"""The committed IR (``orchbench_ml.yaml``, compiled by ``manifest.py``) and the copies of it
that are uploaded to a cluster: every step's image set to a pinned reference, and a pipeline
version named after the content, so an unchanged IR re-uses its version."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import yaml

IR_PATH = Path(__file__).resolve().parent / "orchbench_ml.yaml"
PIPELINE_DISPLAY_NAME = "orchbench-ml"


def check_image_reference(image: str) -> str:
    """``image`` if it is a pinned image reference (a tag or a digest), else ValueError."""
    if not image or any(c.isspace() for c in image):
        raise ValueError(f"step image {image!r}: expected an image reference, e.g. repo:tag")
    if not any(mark in image.rsplit("/", 1)[-1] for mark in (":", "@")):
        raise ValueError(f"step image {image!r}: pin it with a tag or a digest (repo:tag)")
    return image


def ir_containers(ir_docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The container spec of every executor in the IR's YAML documents (importer executors
    run no image of ours); ValueError when there is none."""
    containers = [
        executor["container"]
        for doc in ir_docs
        for executor in ((doc or {}).get("deploymentSpec") or {}).get("executors", {}).values()
        if "container" in executor
    ]
    if not containers:
        raise ValueError("the IR has no container executor under deploymentSpec.executors")
    return containers


def ir_with_image(ir_docs: list[dict[str, Any]], image: str) -> list[dict[str, Any]]:
    """A copy of the IR's YAML documents in which every container executor runs ``image``."""
    check_image_reference(image)
    docs = copy.deepcopy(ir_docs)
    for container in ir_containers(docs):
        container["image"] = image
    return docs


def ir_text_with_image(ir_text: str, image: str) -> str:
    """``ir_with_image`` on the IR file's text: the text to upload."""
    return yaml.safe_dump_all(
        ir_with_image(list(yaml.safe_load_all(ir_text)), image), sort_keys=False
    )


def version_name(ir_text: str) -> str:
    """A pipeline version per IR content: re-submitting the same IR re-uses it."""
    return f"{PIPELINE_DISPLAY_NAME}-{hashlib.sha256(ir_text.encode()).hexdigest()[:12]}"
