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
  flow, lineage and caching. Each output artifact's metadata links the two: the store URI and
  the BLAKE3 digest of the bytes (``metadata.py``, which also fills the ``Metrics`` and
  ``ClassificationMetrics`` artifacts the KFP UI draws).

Every component process sends shared_ml's log records to its stderr
(``shared_ml.logs.configure_logging``), which KFP keeps as the step's log: the pod log on a
cluster, the task's streamed output locally (kept per attempt by ``task_logs``).

The exit handler's alert goes to the webhook and, when ``ORCHBENCH_SMTP_HOST`` and
``ORCHBENCH_ALERT_EMAIL_TO`` are set in the component's environment, by e-mail
(``shared_ml.notify``). Locally the component inherits the launcher's environment; on a
cluster the variables must be put on the exit task's pod (docs/kubeflow.md, "Exit handler").
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

from kfp import dsl

from pipelines.kubeflow.metadata import (
    classification_figures,
    describe_classification,
    describe_metrics,
    store_link,
)
from shared_ml.artifacts import ArtifactStore
from shared_ml.config import PipelineConfig, config_from_json
from shared_ml.execution import execute_step
from shared_ml.logs import configure_logging
from shared_ml.notify import email_settings, failure_payload, post_webhook, send_email
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
    classification: dsl.ClassificationMetrics | None = None,
) -> dict[str, Any]:
    """Run one spec step through ``execute_step`` and fill the component's output artifacts.

    ``inputs`` maps the spec's parameter names to input artifacts, or to lists of them for
    the fan-in (``dsl.Collected``); ``branch`` is the candidate of a per-candidate step.
    ``classification`` (evaluate's) gets the confusion matrix and ROC curve of the model.
    """
    configure_logging()
    config = step_config(config_json, seed, logical_date)
    result = execute_step(step, config, input_paths(inputs), run_id=run_id, branch=branch)
    store = ArtifactStore(config.storage.artifact_root)
    produced, links = {}, {}
    for name, artifact in outputs.items():
        produced[name] = store.get_bytes(result["outputs"][name])
        _write_file_atomically(produced[name], artifact.path)
        links[name] = store_link(store, result["outputs"][name], produced[name], inputs)
        if not isinstance(artifact, dsl.Metrics):
            artifact.metadata.update(links[name])
    # The model the metrics describe: the one this step hands on (select) or was given.
    model = links.get("model") or (dict(inputs["model"].metadata) if "model" in inputs else {})
    for name, artifact in outputs.items():
        if isinstance(artifact, dsl.Metrics):
            describe_metrics(artifact, produced[name], links[name], model)
    if classification is not None:
        figures = classification_figures(store, inputs["model"].path, inputs["test_set"].path)
        describe_classification(classification, figures, links["metrics"], model)
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
    """The exit handler's work: unless the run succeeded, post a Slack-compatible message
    to ``webhook_url`` and send the same alert by e-mail when ``email_settings()`` has a
    server and recipients in the environment.

    Returns what it did (``"skipped: ..."``, or ``"posted: <HTTP status>"`` and/or
    ``"e-mailed: <recipients>"``). A failed post or send raises, and so does a half-set
    e-mail setting, so the exit task fails visibly.
    """
    configure_logging()
    if state == "SUCCEEDED":
        return "skipped: the pipeline succeeded"
    settings = email_settings()
    if not webhook_url and settings is None:
        print(f"pipeline {state}; no webhook_url and no e-mail configured", file=sys.stderr)
        return "skipped: no webhook_url, no e-mail"
    config = config_from_json(config_json)
    step, error = failed_step(config.storage.runs_root, run_id)
    payload = failure_payload(
        tool=TOOL,
        pipeline=PIPELINE.name,
        run_id=run_id,
        step=step,
        error=error or error_message or f"pipeline finished in state {state}",
    )
    done = []
    if webhook_url:
        done.append(f"posted: {post_webhook(webhook_url, payload)}")
    if settings is not None:
        send_email(payload, settings)
        done.append(f"e-mailed: {', '.join(settings['to'])}")
    print(f"pipeline {state}: {'; '.join(done)}", file=sys.stderr)
    return "; ".join(done)
