"""One benchmark invocation from plan to report: run, summarise, validate, write, render."""

from __future__ import annotations

import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from benchmarks.harness import checkpoint
from benchmarks.harness.checkpoint import Checkpoint
from benchmarks.harness.machine import machine_info
from benchmarks.harness.plan import Plan, base_tool
from benchmarks.harness.results import build_results, tool_versions, write_results
from benchmarks.harness.runner import Progress, run_plan
from benchmarks.harness.session import Collected
from benchmarks.report.render import render_report

# Outcome statuses that make `orchbench bench` exit 3 (harness/cli.py). Only "error":
# a scenario that raised or whose premise broke (a run that did not succeed, an adapter or
# services that would not start). The others are planned or per-figure gaps that the report
# explains: "skipped" (left out of this plan), "not_applicable" (means nothing for the tool),
# "not_supported" (the tool lacks the capability), "unavailable" (one figure the tool cannot
# report). benchmarks/harness/schema/results.schema.json lists every status.
FAILED_STATUSES = frozenset({"error"})


def failed_outcomes(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The outcomes of a results.json document that count as failures."""
    return [o for o in results.get("outcomes", []) if o.get("status") in FAILED_STATUSES]


def report_dir(output: Path, now: datetime | None = None) -> Path:
    """A new ``<output>/<timestamp>`` folder (suffixed if two runs share a second)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    candidate = output / stamp
    suffix = 1
    while candidate.exists():
        candidate = output / f"{stamp}-{suffix}"
        suffix += 1
    candidate.mkdir(parents=True)
    return candidate


def execute(
    plan: Plan, progress: Progress | None = None, resume: Checkpoint | None = None
) -> dict[str, Path]:
    """Run the plan (or what ``resume`` left of it, in its folder) and write results.json,
    report.md and report.html; return their paths. A checkpoint is written after every
    session, and removed once the report is written."""
    if resume is not None:
        folder, state = plan.output_dir, resume
    else:
        created = datetime.now(UTC)
        folder = report_dir(plan.output_dir, created)
        state = Checkpoint(plan=plan, created_at=created.isoformat(), machine=machine_info())
    work_dir = folder / "work"  # per-run configs and artifacts; safe to delete
    last_mark = [time.perf_counter()]  # when the duration was last added to the state

    def session_done(collected: Collected, key: tuple[int, str, str]) -> None:
        now = time.perf_counter()
        state.done.append(key)
        state.duration_s += now - last_mark[0]
        last_mark[0] = now
        checkpoint.save(folder, state)

    collected = run_plan(
        plan,
        work_dir,
        progress,
        collected=state.collected,
        done=state.done,
        on_session_done=session_done,
    )
    versions = {
        tool: tool_versions(base_tool(tool), entry.get("packages", []))
        for tool, entry in collected.tools.items()
    }
    results = build_results(
        plan=plan.describe(),
        collected=collected,
        created_at=state.created_at,
        duration_s=state.duration_s,
        machine=state.machine,
        versions=versions,
        pipeline_config=yaml.safe_load(plan.pipeline_config.read_text(encoding="utf-8")) or {},
        command=shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    )
    results_path = write_results(results, folder / "results.json")
    markdown, html = render_report(results, folder)
    (folder / checkpoint.CHECKPOINT).unlink(missing_ok=True)
    return {"dir": folder, "results": results_path, "markdown": markdown, "html": html}
