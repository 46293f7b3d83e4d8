"""What each KFP component does once it is running: the glue between KFP artifacts and shared_ml.

A lightweight KFP component ships only its own function's source, so the code the components
share lives in this importable module. Locally it is imported from the launching environment
(``.venvs/kubeflow`` has the project installed editable); on a cluster from the
``orchbench/shared-ml:<version>-kubeflow`` image, which installs ``shared_ml`` and ``pipelines``.

How KFP artifacts and the shared_ml store relate:

- A step reads its inputs from the KFP input artifacts' local paths (``artifact.path``), which
  is how KFP hands data to a component both locally and on a cluster (where the launcher
  downloads them from the pipeline root). A collected input (``Input[List[Model]]`` from
  ``dsl.Collected``) is a list of artifacts, passed on as the list of their paths.
- ``execute_step`` writes the step's outputs to shared_ml's content-addressed store, as in every
  tool; their bytes are then copied into the KFP output artifacts' paths, so KFP owns the data
  flow, lineage and caching. Each output artifact's metadata records the store URI and the
  BLAKE3 digest of the bytes (its name in the store), linking the two (select's outputs are
  copies of its inputs, so they get the digest only).
- A ``Metrics`` artifact (evaluate's, select's) gets both: ``log_metric`` for the KFP UI and the
  metrics JSON as its file, because the local cache treats an artifact without a file as a miss.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

from kfp import dsl

from shared_ml.artifacts import ArtifactStore, content_digest
from shared_ml.config import PipelineConfig, config_from_json
from shared_ml.execution import execute_step
from shared_ml.notify import failure_payload, post_webhook
from shared_ml.records import read_step_records
from shared_ml.spec import PIPELINE

TOOL = "kubeflow"


def step_config(config_json: str, seed: int, logical_date: str) -> PipelineConfig:
    """The config a component runs with: the pipeline's config parameter, seed applied, and
    the run's partition set from ``logical_date`` ("YYYY-MM-DD"; empty: today, a manual run).

    The launchers (``run``, ``deploy``) pass an explicit date, so every step of a run
    sees the same one; the empty fallback is for runs that cannot be given one (a cluster's
    recurring run: KFP v2 does not template its parameters)."""
    config = config_from_json(config_json).with_overrides(seed=seed)
    return config.for_partition(logical_date or None)


def _write_file_atomically(data: bytes, path: str) -> None:
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def input_paths(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Each input artifact's local path; a collected input (a list) becomes a list of paths."""
    return {
        name: [item.path for item in given] if isinstance(given, list) else given.path
        for name, given in inputs.items()
    }


def run_step(
    step: str,
    config_json: str,
    run_id: str,
    seed: int,
    logical_date: str,
    inputs: Mapping[str, Any],
    outputs: Mapping[str, dsl.Artifact],
    branch: str | None = None,
) -> dict[str, Any]:
    """Run one spec step through ``execute_step`` and fill the component's output artifacts.

    ``inputs`` maps the spec's parameter names to input artifacts, or to lists of them for
    the fan-in (``dsl.Collected``); ``branch`` is the candidate of a per-candidate step.
    """
    config = step_config(config_json, seed, logical_date)
    result = execute_step(step, config, input_paths(inputs), run_id=run_id, branch=branch)
    store = ArtifactStore(config.storage.artifact_root)
    for name, artifact in outputs.items():
        uri = result["outputs"][name]
        data = store.get_bytes(uri)
        _write_file_atomically(data, artifact.path)
        if isinstance(artifact, dsl.Metrics):
            # Metrics metadata is shown as a table of numbers in the KFP UI: numbers only.
            for metric, value in result["metadata"].get("metrics", {}).items():
                artifact.log_metric(metric, value)
        else:
            # select hands over one of its input files, not a store URI: link only the digest.
            link = {"store_uri": uri} if uri.startswith(store.root + "/") else {}
            artifact.metadata.update({**link, "blake3": content_digest(data)})
    return result


def failed_step(runs_root: str, run_id: str) -> tuple[str | None, str | None]:
    """The last failed step attempt of ``run_id`` and its error, from the step records."""
    failed = [r for r in read_step_records(runs_root, run_id) if r.outcome == "failed"]
    if not failed:
        return None, None
    last = failed[-1]
    return last.step, (last.error.message if last.error else None)


def notify_if_failed(
    config_json: str,
    run_id: str,
    webhook_url: str,
    state: str,
    error_message: str | None,
) -> str:
    """The exit handler's work: post a Slack-compatible message unless the run succeeded.

    Returns what it did (``"skipped: ..."`` or ``"posted: <HTTP status>"``). A failed post
    raises, so the exit task fails visibly.
    """
    if state == "SUCCEEDED":
        return "skipped: the pipeline succeeded"
    if not webhook_url:
        print(f"pipeline {state}; no webhook_url configured, nothing posted", file=sys.stderr)
        return "skipped: no webhook_url"
    config = config_from_json(config_json)
    step, error = failed_step(config.storage.runs_root, run_id)
    payload = failure_payload(
        tool=TOOL,
        pipeline=PIPELINE.name,
        run_id=run_id,
        step=step,
        error=error or error_message or f"pipeline finished in state {state}",
    )
    status = post_webhook(webhook_url, payload)
    return f"posted: {status}"
