"""One benchmark invocation from plan to report: run, summarise, validate, write, render."""

from __future__ import annotations

import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from benchmarks.harness.plan import Plan
from benchmarks.harness.results import build_results, machine_info, tool_versions, write_results
from benchmarks.harness.runner import Progress, run_plan
from benchmarks.report.render import render_report


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


def execute(plan: Plan, progress: Progress | None = None) -> dict[str, Path]:
    """Run the plan and write results.json, report.md and report.html; return their paths."""
    created = datetime.now(UTC)
    folder = report_dir(plan.output_dir, created)
    work_dir = folder / "work"  # per-run configs and artifacts; safe to delete
    machine = machine_info()
    started = time.perf_counter()
    collected = run_plan(plan, work_dir, progress)
    duration = time.perf_counter() - started
    versions = {
        tool: tool_versions(tool, entry.get("packages", []))
        for tool, entry in collected.tools.items()
    }
    results = build_results(
        plan=plan.describe(),
        collected=collected,
        created_at=created.isoformat(),
        duration_s=duration,
        machine=machine,
        versions=versions,
        pipeline_config=yaml.safe_load(plan.pipeline_config.read_text(encoding="utf-8")) or {},
        command=shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    )
    results_path = write_results(results, folder / "results.json")
    markdown, html = render_report(results, folder)
    return {"dir": folder, "results": results_path, "markdown": markdown, "html": html}
