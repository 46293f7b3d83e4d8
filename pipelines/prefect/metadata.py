"""What a run chose, as Prefect artifacts: where Prefect users look for a run's results.

At the end of a flow run whose ``select`` step completed, the flow creates:

- a *table* artifact ``<pipeline>-candidates`` (e.g. ``orchbench-ml-candidates``): one row per
  candidate with its rank, whether it passed the quality gate, its metrics, and which one
  was selected;
- a *markdown* artifact ``<pipeline>-model``: the selected candidate, its metrics, where its
  model file is, and what the registry did with it (version, promotion and its reason, the
  champion after it), when ``register`` completed too.

Both belong to the flow run (its Artifacts tab in the UI, ``POST /api/artifacts/filter`` by
``flow_run_id``). Being keyed, each key also keeps its history across runs: the UI's
Artifacts page shows the latest and every earlier version.
"""

from __future__ import annotations

import re
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

METRIC_COLUMNS = ("f1", "roc_auc", "accuracy")


def artifact_key(pipeline_name: str, what: str) -> str:
    """Prefect artifact keys hold lowercase letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9-]+", "-", pipeline_name.lower()).strip("-") or "pipeline"
    return f"{slug}-{what}"


def candidate_rows(selection: dict[str, Any]) -> list[dict[str, Any]]:
    """``select``'s ranking as table rows, best first."""
    selected = selection["selected"]
    rows = []
    for entry in selection["candidates"]:
        metrics = {m: entry[m] for m in METRIC_COLUMNS if m in entry}
        extra = {
            k: v
            for k, v in entry.items()
            if k not in metrics and k not in {"candidate", "rank", "gate_passed"}
        }
        rows.append(
            {
                "rank": entry["rank"],
                "candidate": entry["candidate"],
                "selected": entry["candidate"] == selected,
                "gate_passed": entry["gate_passed"],
                **metrics,
                **extra,
            }
        )
    return rows


def model_markdown(
    run_id: str,
    logical_date: str | None,
    selected: dict[str, Any],
    registered: dict[str, Any] | None,
    registry: str,
) -> str:
    """The selected model and its registration, as a small markdown page."""
    selection = selected["metadata"]
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in selection["metrics"].items())
    dated = f" for {logical_date}" if logical_date else ""
    lines = [
        f"### Selected model of run `{run_id}`{dated}",
        "",
        "| | |",
        "| --- | --- |",
        f"| candidate | **{selection['selected']}** (on {selection['primary_metric']}) |",
        f"| metrics | {metrics} |",
        f"| quality gate | {'passed' if selection['gate_passed'] else 'failed'} |",
        f"| model file | `{selected['outputs']['model']}` |",
        f"| prediction hash | `{selection['prediction_hash']}` |",
    ]
    if registered is None:
        lines.append("| registry | not registered (the `register` step did not complete) |")
    else:
        registration = registered["metadata"]["registration"]
        promoted = "promoted" if registration["promoted"] else "not promoted"
        lines += [
            f"| registry | `{registry}` version {registration['version']}: {promoted} "
            f"({registration['reason']}) |",
            f"| champion | version {registration['champion_version']} |",
            f"| registry entry | `{registered['outputs']['registry_entry']}` |",
        ]
    return "\n".join(lines) + "\n"


def publish_run_metadata(
    *,
    pipeline_name: str,
    run_id: str,
    logical_date: str | None,
    registry: str,
    selected: dict[str, Any],
    registered: dict[str, Any] | None,
) -> dict[str, str]:
    """Create both artifacts in the current flow run; return key -> artifact id.

    ``selected`` and ``registered`` are the ``select`` and ``register`` task results
    (``{"outputs": ..., "metadata": ...}``); ``registered`` is None when it did not run.
    """
    selection = selected["metadata"]
    table_key = artifact_key(pipeline_name, "candidates")
    model_key = artifact_key(pipeline_name, "model")
    table_id = create_table_artifact(
        candidate_rows(selection),
        key=table_key,
        description=(
            f"Candidates of run {run_id}, best first on {selection['primary_metric']}; "
            f"selected: {selection['selected']}"
        ),
    )
    model_id = create_markdown_artifact(
        model_markdown(run_id, logical_date, selected, registered, registry),
        key=model_key,
        description=f"The model run {run_id} selected, where it is, and its registration",
    )
    return {table_key: str(table_id), model_key: str(model_id)}
