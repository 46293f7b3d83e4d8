""" "Which tool when": rules that pick a tool from the measured figures and the feature
matrix of one results document, never from claims. A rule with too little data says so."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BASELINE = "local"


@dataclass(frozen=True)
class FigureRule:
    rule: str
    when: str
    figure: str
    pick: str  # "min" or "max"
    params: dict[str, Any] | None = None
    min_tools: int = 2


FIGURE_RULES = (
    FigureRule(
        "fastest pipeline end to end",
        "Interactive or latency-sensitive runs of a short pipeline",
        "latency.end_to_end_s",
        "min",
    ),
    FigureRule(
        "lowest orchestration overhead",
        "Pipelines of many short steps, where the tool's own cost dominates",
        "latency.overhead_s",
        "min",
    ),
    FigureRule(
        "fastest cold start",
        "Ephemeral environments, CI jobs, scale-to-zero",
        "setup.cold_start_s",
        "min",
    ),
    FigureRule(
        "smallest idle footprint",
        "Small VMs and laptops, tight memory budgets",
        "setup.idle_pss_mb",
        "min",
    ),
    FigureRule(
        "smallest environment",
        "Slim images and fast environment builds",
        "setup.venv_size_mb",
        "min",
    ),
    FigureRule(
        "fastest import", "Short-lived task processes that import the tool", "setup.import_s", "min"
    ),
    FigureRule(
        "least pipeline code",
        "Teams that want the least orchestration code to own",
        "setup.authoring_lines",
        "min",
    ),
    FigureRule(
        "smallest cluster footprint",
        "Shared clusters where requested memory is the budget",
        "setup.cluster_memory_request_mib",
        "min",
    ),
    FigureRule(
        "highest backfill throughput",
        "Reprocessing history over many dates",
        "recovery.backfill_runs_per_min",
        "max",
    ),
    FigureRule(
        "fewest steps re-executed on resume",
        "Expensive steps that must not run twice after a failure",
        "recovery.resume_reexecuted_steps",
        "min",
    ),
    FigureRule(
        "fastest recovery from a killed worker",
        "Preemptible or memory-tight workers that get killed",
        "recovery.kill_recovery_s",
        "min",
    ),
)

SLOPE_RULES = (
    ("lowest per-task cost in a chain", "Many small sequential tasks", "chain"),
    ("lowest per-task cost in a fan-out", "Wide parallel fan-outs", "fanout"),
)

SURVIVAL_RULES = (
    (
        "completes a run across a server restart",
        "Servers that get upgraded or rescheduled while runs are in flight",
        "recovery.restart_completed",
    ),
    (
        "completes a run after a worker is killed",
        "Workers that can die mid-task (OOM, preemption)",
        "recovery.kill_completed",
    ),
)


def _profile(results: dict[str, Any]) -> str:
    profiles = results["plan"]["profiles"]
    return "defaults" if "defaults" in profiles else profiles[0]


def _medians(results: dict[str, Any], figure: str, params: dict | None = None) -> dict[str, dict]:
    profile = _profile(results)
    found = {}
    for row in results["summaries"]:
        if (
            row["figure"] == figure
            and row["profile"] == profile
            and row["tool"] != BASELINE
            and (params is None or row["params"] == params)
        ):
            found[row["tool"]] = row
    return found


def _fmt(value: float, unit: str) -> str:
    return f"{value:.0f} {unit}" if abs(value) >= 100 else f"{value:.3g} {unit}"


def _evidence(rows: dict[str, dict], unit: str, value: Callable[[dict], float]) -> str:
    parts = [
        f"{tool} {_fmt(value(row), unit)} ({row['execution_model']})"
        for tool, row in sorted(rows.items(), key=lambda item: value(item[1]))
    ]
    return "; ".join(parts)


def _undecided(rule: str, when: str, why: str) -> dict[str, Any]:
    return {"rule": rule, "when": when, "tools": [], "evidence": f"not decided: {why}"}


def recommendations(results: dict[str, Any]) -> list[dict[str, Any]]:
    figures = results["figures"]
    profile = _profile(results)
    out: list[dict[str, Any]] = []
    for r in FIGURE_RULES:
        rows = _medians(results, r.figure, r.params)
        unit = figures[r.figure]["unit"]
        if len(rows) < r.min_tools:
            out.append(_undecided(r.rule, r.when, f"{len(rows)} tool(s) measured {r.figure}"))
            continue
        chooser = min if r.pick == "min" else max
        best = chooser(row["median"] for row in rows.values())
        winners = sorted(tool for tool, row in rows.items() if row["median"] == best)
        out.append(
            {
                "rule": r.rule,
                "when": r.when,
                "tools": winners,
                "evidence": f"median {figures[r.figure]['name']} ({profile}): "
                + _evidence(rows, unit, lambda row: row["median"]),
            }
        )
    for rule, when, shape in SLOPE_RULES:
        fits = {
            f["tool"]: f
            for f in results["fits"]
            if f["shape"] == shape and f["profile"] == profile and f["tool"] != BASELINE
        }
        if len(fits) < 2:
            out.append(_undecided(rule, when, f"{len(fits)} tool(s) with a {shape} fit"))
            continue
        best = min(f["slope_s_per_task"] for f in fits.values())
        out.append(
            {
                "rule": rule,
                "when": when,
                "tools": sorted(t for t, f in fits.items() if f["slope_s_per_task"] == best),
                "evidence": f"fitted slope ({profile}): "
                + _evidence(fits, "s/task", lambda f: f["slope_s_per_task"]),
            }
        )
    for rule, when, figure in SURVIVAL_RULES:
        rows = _medians(results, figure)
        if not rows:
            out.append(_undecided(rule, when, f"no tool measured {figure}"))
            continue
        survivors = sorted(t for t, row in rows.items() if row["min"] == 1.0)
        out.append(
            {
                "rule": rule,
                "when": when,
                "tools": survivors,
                "evidence": "succeeded in every repetition: "
                + (", ".join(survivors) or "none")
                + "; measured: "
                + ", ".join(sorted(rows)),
            }
        )
    matrix = results["feature_matrix"]
    names = {f["key"]: f["name"] for f in matrix["features"]}
    for feature in names:
        proven = sorted(
            c["tool"]
            for c in matrix["cells"]
            if c["feature"] == feature and c["status"] == "proven"
        )
        if len(proven) == 1:
            tests = next(
                c["tests"]
                for c in matrix["cells"]
                if c["feature"] == feature and c["tool"] == proven[0]
            )
            out.append(
                {
                    "rule": f"only tool whose tests proved: {names[feature]}",
                    "when": f"{names[feature]} is a requirement",
                    "tools": proven,
                    "evidence": "proven by " + ", ".join(tests),
                }
            )
    return out
