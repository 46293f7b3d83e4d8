"""``orchbench demo``'s showcase run: the bundled default pipeline once on every tool.

It runs inside each tool's first benchmark session, on the services that session already
started, as that session's first run: it takes the warm-up run's place. The default config
trains three candidates where the chain trained one; a start and stop of every tool's
services for this run, plus a separate warm-up, made ``make demo`` slower than the chain's.
So in a demo the first run's costs (DAG parsing, first imports) fall on this run: its wall
time is a first run's, and the table says so; the benchmark's figures all come after it,
and the quick report has no first-run figure.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.table import Table

from shared_ml.runner import new_run_id

if TYPE_CHECKING:
    from benchmarks.harness.session import Session

DEMO_METRICS = ("accuracy", "f1", "roc_auc")


def demo_run(s: Session) -> None:
    """Run ``plan.demo_config`` once (storage in a fresh folder, so the run does the work)
    and keep what the table needs under ``tools[tool]["demo_run"]`` in results.json."""
    assert s.plan.demo_config is not None
    config = s.config_for("demo", source=s.plan.demo_config)
    entry: dict[str, Any] = {"config": s.plan.demo_config.name}
    s.collected.tools[s.tool]["demo_run"] = entry
    started = time.perf_counter()
    try:
        record = s.adapter.run_pipeline(config, run_id=new_run_id(f"demo-{s.tool}"))
    except Exception as err:
        entry.update(status="error", error=f"{type(err).__name__}: {err}"[:300])
        raise
    entry.update(
        wall_s=round(time.perf_counter() - started, 3),
        run_id=record.run_id,
        status=record.status,
        selected_candidate=record.selected_candidate,
        metrics=record.metrics,
        prediction_hash=record.prediction_hash,
    )
    if record.status != "success":  # the benchmark's premise (a working pipeline) broke
        raise RuntimeError(f"the demo run {record.run_id} ended {record.status}")


def demo_table(tools: dict[str, dict[str, Any]], order: list[str]) -> Table:
    """Status, metrics, selected candidate, prediction hash (equal or not) and wall time."""
    runs = {tool: tools.get(tool, {}).get("demo_run") for tool in order}
    config = next((r["config"] for r in runs.values() if r), "configs/default.yaml")
    table = Table(title=f"The pipeline on every tool ({config}; each tool's first run)")
    for column in ("tool", "status", "selected", *DEMO_METRICS, "prediction hash", "wall s"):
        table.add_column(column, no_wrap=column == "prediction hash")
    hashes = [r.get("prediction_hash") for r in runs.values() if r and r.get("prediction_hash")]
    reference = hashes[0] if hashes else None
    for tool, run in runs.items():
        if not run:
            table.add_row(
                tool,
                "[red]not run[/]: the tool's services did not start",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
            )
            continue
        if run.get("status") == "error":
            table.add_row(tool, f"[red]error[/]: {run['error']}"[:160], *("-",) * 6)
            continue
        metrics = run.get("metrics") or {}
        digest = run.get("prediction_hash")
        same = digest is not None and digest == reference
        table.add_row(
            tool,
            run["status"],
            run.get("selected_candidate") or "-",
            *(f"{metrics[k]:.4f}" if k in metrics else "-" for k in DEMO_METRICS),
            f"{(digest or '-')[:12]} {'(equal)' if same else '[red](differs)[/]'}",
            f"{run['wall_s']:.1f}",
        )
    return table
