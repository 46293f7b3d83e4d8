"""Render ``report.md`` and a self-contained ``report.html`` from a ``results.json``.

Everything the report says comes from the results document: the figures' definitions,
the numbers, the outcomes of scenarios a tool could not do, the feature matrix and the
"which tool when" rules. Tables are split by execution model (in-process,
process-per-task, pod-per-step): their numbers never share a column.
"""

from __future__ import annotations

import base64
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import jinja2

from benchmarks.harness.phases import PHASES
from benchmarks.report.charts import all_charts
from benchmarks.report.cpu_split import cpu_models, cpu_split_rows, cpu_text
from benchmarks.report.figure_tables import figure_tables, fit_tables, fmt
from benchmarks.report.profiles_table import equal_concurrency, settings_sections
from benchmarks.report.sessions_table import session_rows, sessions_span, sessions_summary
from shared_ml.artifacts import atomic_write_text
from shared_ml.storage import write_bytes

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATUS_TEXT = {
    "proven": "proven",
    "pending": "not yet proven (test pending)",
    "unsupported": "not supported",
    "not_tested": "not tested here",
}


def outcome_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every scenario or figure that was not measured, once per (tool, profile, reason)."""
    seen: dict[tuple, dict[str, Any]] = {}
    for o in results["outcomes"]:
        if o["status"] == "ok":
            continue
        key = (o["scenario"], o["figure"], o["tool"], o["profile"], o["status"], o["reason"])
        if key in seen:
            seen[key]["repetitions"] += 1
        else:
            seen[key] = {**o, "repetitions": 1}
    return sorted(seen.values(), key=lambda o: (o["scenario"], o["tool"], o["profile"]))


# Process ids, run ids and the like: notes that differ only in them say the same thing.
_VARYING_IDS = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}|\d+")


def what_happened(results: dict[str, Any], scenario: str) -> list[dict[str, Any]]:
    """The scenario's notes on what it did and saw (an "ok" outcome with a reason: what
    was killed, the terminal state read back), once per (tool, profile, text), where
    texts that differ only in ids and pids are one text; the first one is shown."""
    seen: dict[tuple, dict[str, Any]] = {}
    for o in results["outcomes"]:
        if o["scenario"] != scenario or o["status"] != "ok" or not o["reason"]:
            continue
        key = (o["tool"], o["profile"], _VARYING_IDS.sub("#", o["reason"]))
        seen.setdefault(key, {**o, "repetitions": 0})["repetitions"] += 1
    return sorted(seen.values(), key=lambda o: (o["tool"], o["profile"]))


def coverage_columns(results: dict[str, Any]) -> list[str]:
    """The plan's tools, each followed by its other labels (``airflow+postgres``)."""
    labels = list(results["tools"])
    columns = []
    for tool in results["plan"]["tools"]:
        columns += [tool] + [label for label in labels if label.startswith(tool + "+")]
    return columns + [label for label in labels if label not in columns]


def scenario_status(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per scenario and tool label: ok / not supported / error... and the total time it
    took (all repetitions and profiles), so no tool vanishes and the cost of each is
    visible."""
    statuses: dict[tuple[str, str], set[str]] = defaultdict(set)
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    for o in results["outcomes"]:
        if o["figure"] is None:
            statuses[(o["scenario"], o["tool"])].add(o["status"])
            seconds[(o["scenario"], o["tool"])] += o.get("duration_s", 0.0)
    tools = coverage_columns(results)
    rows = []
    skipped = results["plan"].get("skipped_scenarios", [])
    # warmup and demo (orchbench demo's showcase run) are rows only when they happened
    optional = ("warmup", "demo")
    for scenario in ["warmup", "demo", *results["plan"]["scenarios"], *skipped]:
        cells = []
        for tool in tools:
            found = statuses.get((scenario, tool))
            if found is None:
                cells.append("-" if scenario in optional else "missing")
                continue
            took = seconds[(scenario, tool)]
            cells.append(", ".join(sorted(found)) + (f" ({took:.0f} s)" if took else ""))
        if scenario not in optional or any(c != "-" for c in cells):
            rows.append({"scenario": scenario, "cells": cells})
    return rows


ADHOC_CASES = {
    "transient": "transient error on the first training attempt",
    "kill": "process SIGKILLed mid-training",
    "rerun": "the same work run again",
    "backfill": "three-date backfill",
}


def _spread(values: list[float], unit: str = "") -> str:
    ordered = sorted(values)
    middle = statistics.median(ordered)
    if len(ordered) == 1 or ordered[0] == ordered[-1]:
        return f"{fmt(middle)}{unit}"
    return f"{fmt(middle)}{unit} [{fmt(ordered[0])}-{fmt(ordered[-1])}]"


def adhoc_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Pipelines vs ad-hoc scripts: one row per (fault case, runner), over repetitions
    (medians with min-max where they differ; yes/no with the count when they disagree)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in results.get("adhoc_comparison", []):
        groups[(row["case"], row["runner"])].append(row)
    order = list(ADHOC_CASES)

    def yes_no(values: list[Any]) -> str:
        if all(v is None for v in values):
            return "-"
        yes = sum(1 for v in values if v)
        return "yes" if yes == len(values) else "no" if yes == 0 else f"{yes}/{len(values)} yes"

    return [
        {
            "case": ADHOC_CASES.get(case, case),
            "runner": "ad-hoc script" if runner == "script" else "pipeline (plain runner)",
            "completed": yes_no([r["completed"] for r in rows]),
            "human_reruns": _spread([r["human_reruns"] for r in rows]),
            "work_lost": _spread([r["work_lost_s"] for r in rows], " s"),
            "steps_redone": _spread([r["steps_redone"] for r in rows]),
            "duplicates": _spread([r["duplicate_registry_entries"] for r in rows]),
            "failure_recorded": yes_no([r["failure_recorded"] for r in rows]),
            "observed": rows[0]["observed"],
            "n": len(rows),
        }
        for (case, runner), rows in sorted(
            groups.items(),
            key=lambda item: (
                order.index(item[0][0]) if item[0][0] in order else 9,
                item[0][1] != "script",
            ),
        )
    ]


def matrix_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    matrix = results["feature_matrix"]
    cells = {(c["feature"], c["tool"]): c for c in matrix["cells"]}
    rows = []
    for feature in matrix["features"]:
        row_cells = []
        for tool in matrix["tools"]:
            c = cells.get((feature["key"], tool))
            if c is None:
                row_cells.append({"status": "missing", "summary": "", "tests": []})
                continue
            row_cells.append({**c, "status_text": STATUS_TEXT.get(c["status"], c["status"])})
        rows.append({"feature": feature, "cells": row_cells})
    return rows


def caveats(results: dict[str, Any]) -> list[str]:
    """What a reader must know before quoting a number, printed in the report itself."""
    plan, machine = results["plan"], results["machine"]
    out = []
    if plan["repeat"] < 3:
        out.append(
            f"{plan['repeat']} repetition(s): no figure has a confidence interval, so no "
            "verdict is made; differences of a few seconds are noise."
        )
    elif plan["repeat"] < 5:
        out.append(f"{plan['repeat']} repetitions: intervals are wide; 5 or more are advised.")
    if plan.get("quick"):
        out.append(
            "Quick mode: fewer sizes and scenarios (see 'Not measured, and why'); scaling "
            "slopes may rest on two points."
        )
    models = {e.get("execution_model") for e in results["tools"].values()} - {None}
    if len(models) > 1:
        out.append(
            "The tools run the work in different ways ("
            + ", ".join(sorted(models))
            + "): run-time figures are only compared within one execution model."
        )
    if "kubeflow" in results["tools"] and plan.get("target") == "local":
        out.append(
            "Kubeflow Pipelines ran on its local SubprocessRunner (a Python process per step "
            "on this machine), not on a cluster: it says little about pod-per-step cost."
        )
    if any(f.get("declared") for f in results["figures"].values()):
        out.append("Cluster pod counts and requests are declared in the infra code, not measured.")
    cpus = cpu_models(results)
    if len(cpus) > 1:
        out.append(
            f"The sessions ran on {len(cpus)} CPU models ({', '.join(cpus)}): each figure "
            "pools the repetitions measured on all of them. 'By CPU model', under Sessions, "
            "splits the headline figures by CPU."
        )
    out += negative_phases(results)
    load = machine.get("load_average_1m_at_start")
    if load is not None and load > 0.5 * machine.get("cpu_count", 1):
        out.append(
            f"The machine was busy at the start (load average {load} on "
            f"{machine.get('cpu_count')} CPUs): figures may be slower than on an idle machine."
        )
    return out


def negative_phases(results: dict[str, Any]) -> list[str]:
    """A phase runs from one moment of a task to a later one, so below zero it is a clock
    error, not a speed: name each such figure, so no one quotes it."""
    below: dict[tuple[str, str], list[float]] = {}
    for o in results["observations"]:
        phase = o["figure"].rsplit(".", 1)[-1].removesuffix("_s")
        if phase in PHASES and o["value"] < 0:
            below.setdefault((o["tool"], o["figure"]), []).append(o["value"])
    return [
        f"{tool} {figure}: {len(values)} observation(s) below zero (down to "
        f"{min(values):.2f} s). Two of the phase's moments came from clocks that disagree "
        "(until December 2026 orchbench took a process's start from psutil's create time, "
        "early by up to 1 s on Linux), so this figure and its neighbour phase are shifted."
        for (tool, figure), values in sorted(below.items())
    ]


def demo_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """``orchbench demo``'s showcase run per tool (none in a plain ``orchbench bench``)."""
    runs = {t: e["demo_run"] for t, e in results["tools"].items() if e.get("demo_run")}
    hashes = [r["prediction_hash"] for r in runs.values() if r.get("prediction_hash")]
    rows = []
    for tool, run in runs.items():
        metrics = run.get("metrics") or {}
        digest = run.get("prediction_hash")
        rows.append(
            {
                "tool": tool,
                "config": run["config"],
                "status": run["status"] if run["status"] != "error" else f"error: {run['error']}",
                "selected": run.get("selected_candidate") or "-",
                "metrics": ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items())) or "-",
                "hash": f"{digest[:12]} ({'equal' if digest == hashes[0] else 'DIFFERS'})"
                if digest
                else "-",
                "wall_s": f"{run['wall_s']:.1f}" if "wall_s" in run else "-",
            }
        )
    return rows


def context(results: dict[str, Any], charts: dict[str, bytes]) -> dict[str, Any]:
    scenarios = results["plan"]["scenarios"]
    sections = []
    titles = results["scenarios"]
    for scenario in scenarios:
        figures = [f for f in results["figures"].values() if f["scenario"] == scenario]
        sections.append(
            {
                "key": scenario,
                "title": titles.get(scenario, scenario),
                "figures": figures,
                "tables": figure_tables(results, scenario),
                "happened": what_happened(results, scenario),
            }
        )
    return {
        "r": results,
        "sections": sections,
        "fits": fit_tables(results),
        "outcomes": outcome_rows(results),
        "status": scenario_status(results),
        "coverage_columns": coverage_columns(results),
        "matrix": matrix_rows(results),
        "adhoc": adhoc_rows(results),
        "demo": demo_rows(results),
        "caveats": caveats(results),
        "settings": settings_sections(results),
        "settings_summary": equal_concurrency(settings_sections(results)),
        "sessions": session_rows(results),
        "sessions_summary": sessions_summary(results),
        "sessions_span": sessions_span(results),
        "cpus": cpu_text(results),
        "cpu_split": cpu_split_rows(results),
        "cpu_split_models": cpu_models(results),
        "charts": {name: base64.b64encode(png).decode() for name, png in charts.items()},
        "chart_files": {name: f"figures/{name}.png" for name in charts},
        "versions_json": json.dumps(results["versions"], indent=2, sort_keys=True),
        "config_json": json.dumps(results.get("pipeline_config", {}), indent=2),
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_report(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write report.md (+ figures/*.png it links) and a self-contained report.html.

    Everything is rendered before anything is written, and each file is replaced
    atomically: a failure leaves the previous report (if any) whole."""
    charts = all_charts(results)
    env = _environment()
    data = context(results, charts)
    texts = {
        "report.md": env.get_template("report.md.j2").render(**data),
        "report.html": env.get_template("report.html.j2").render(**data),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    if charts:
        (out_dir / "figures").mkdir(exist_ok=True)
        for name, png in charts.items():
            write_bytes(str(out_dir / "figures" / f"{name}.png"), png)
    for name, text in texts.items():
        atomic_write_text(out_dir / name, text)
    return out_dir / "report.md", out_dir / "report.html"
