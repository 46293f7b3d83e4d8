""" "Which tool when": rules that pick a tool from the measured figures and the feature
matrix of one results document, never from claims. A rule with too little data says so.

A figure rule names a winner only when the winner's bootstrap 95% interval of the median
does not overlap any other tool's; otherwise it says "no measurable difference". Run-time
figures (latency, recovery) are compared only within one execution model: an in-process
run and a pod per step are different things, so each model gets its own verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.harness.stats import MIN_N_FOR_INTERVAL, intervals_overlap

BASELINE = "local"


@dataclass(frozen=True)
class FigureRule:
    rule: str
    when: str
    figure: str
    pick: str  # "min" or "max"
    params: dict[str, Any] | None = None
    min_tools: int = 2
    # Setup figures are properties of the tool's installation; run-time ones depend on
    # how the work runs, so they are compared per execution model.
    per_execution_model: bool = True


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
        per_execution_model=False,
    ),
    FigureRule(
        "smallest idle footprint",
        "Small VMs and laptops, tight memory budgets",
        "setup.idle_pss_mb",
        "min",
        per_execution_model=False,
    ),
    FigureRule(
        "smallest environment",
        "Slim images and fast environment builds",
        "setup.venv_size_mb",
        "min",
        per_execution_model=False,
    ),
    FigureRule(
        "fastest import",
        "Short-lived task processes that import the tool",
        "setup.import_s",
        "min",
        per_execution_model=False,
    ),
    FigureRule(
        "least pipeline code",
        "Teams that want the least orchestration code to own",
        "setup.authoring_lines",
        "min",
        per_execution_model=False,
    ),
    FigureRule(
        "smallest cluster footprint",
        "Shared clusters where requested memory is the budget",
        "setup.cluster_memory_request_mib",
        "min",
        per_execution_model=False,
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
        f"{tool} {_fmt(value(row), unit)}{_interval(row, unit)} ({row['execution_model']})"
        for tool, row in sorted(rows.items(), key=lambda item: value(item[1]))
    ]
    return "; ".join(parts)


def _interval(row: dict, unit: str) -> str:
    if row.get("ci_low") is None:
        return ""
    return f" [{_fmt(row['ci_low'], unit).split()[0]}-{_fmt(row['ci_high'], unit)}]"


def _undecided(rule: str, when: str, why: str) -> dict[str, Any]:
    return {"rule": rule, "when": when, "tools": [], "evidence": f"not decided: {why}"}


def figure_verdicts(
    r: FigureRule, rows: dict[str, dict], figures: dict[str, Any], profile: str
) -> list[dict[str, Any]]:
    """One verdict per execution model (or one for all, for setup figures)."""
    if figures[r.figure].get("declared"):
        why = "declared in code (infra), not measured: shown in the figures, never a verdict"
        return [_undecided(r.rule, r.when, why)]
    groups: dict[str, dict[str, dict]] = {}
    for tool, row in rows.items():
        model = row["execution_model"] if r.per_execution_model else "all"
        groups.setdefault(model, {})[tool] = row
    compared = {m: g for m, g in groups.items() if len(g) >= r.min_tools}
    if not compared:
        why = (
            f"{len(rows)} tool(s) measured {r.figure}"
            if len(rows) < r.min_tools
            else "no two tools share an execution model (like is only compared with like)"
        )
        return [_undecided(r.rule, r.when, why)]
    unit = figures[r.figure]["unit"]
    verdicts = []
    for model, group in sorted(compared.items()):
        chooser = min if r.pick == "min" else max
        best = chooser(group, key=lambda tool: group[tool]["median"])
        others = [t for t in group if t != best]
        evidence = f"median [95% CI] {figures[r.figure]['name']} ({profile}): " + _evidence(
            group, unit, lambda row: row["median"]
        )
        rule = r.rule if model == "all" else f"{r.rule} ({model})"
        if any(group[t].get("ci_low") is None for t in group):
            why = f"fewer than {MIN_N_FOR_INTERVAL} repetitions, no interval; {evidence}"
            verdicts.append(_undecided(rule, r.when, why))
        elif any(intervals_overlap(group[best], group[t]) for t in others):
            verdicts.append(
                {
                    "rule": rule,
                    "when": r.when,
                    "tools": [],
                    "evidence": f"no measurable difference (the 95% intervals overlap); {evidence}",
                }
            )
        else:
            verdicts.append({"rule": rule, "when": r.when, "tools": [best], "evidence": evidence})
    return verdicts


def slope_verdicts(
    rule: str, when: str, fits: dict[str, dict], profile: str
) -> list[dict[str, Any]]:
    """Per execution model: the lowest slope wins only if it is distinguishable from 0
    (its 95% interval lies above 0) and from every other tool's slope."""
    groups: dict[str, dict[str, dict]] = {}
    for tool, fit in fits.items():
        groups.setdefault(fit["execution_model"], {})[tool] = fit
    compared = {m: g for m, g in groups.items() if len(g) >= 2}
    if not compared:
        why = (
            f"{len(fits)} tool(s) with a fit"
            if len(fits) < 2
            else "no two tools share an execution model"
        )
        return [_undecided(rule, when, why)]
    verdicts = []
    for model, group in sorted(compared.items()):
        evidence = f"fitted slope [95% CI] ({profile}): " + "; ".join(
            f"{tool} {f['slope_s_per_task']:.3g}"
            + (
                f" [{f['slope_ci_low']:.3g}, {f['slope_ci_high']:.3g}]"
                if f.get("slope_ci_low") is not None
                else " [no CI: 2 points]"
            )
            + " s/task"
            for tool, f in sorted(group.items(), key=lambda item: item[1]["slope_s_per_task"])
        )
        best = min(group, key=lambda tool: group[tool]["slope_s_per_task"])
        fit = group[best]
        named = f"{rule} ({model})"
        if fit.get("slope_ci_low") is None or any(
            g.get("slope_ci_low") is None for g in group.values()
        ):
            verdicts.append(_undecided(named, when, f"fewer than 3 points per fit; {evidence}"))
        elif fit["slope_ci_low"] <= 0:
            verdicts.append(
                _undecided(named, when, f"{best}'s slope is not distinguishable from 0; {evidence}")
            )
        elif any(
            intervals_overlap(
                {"ci_low": fit["slope_ci_low"], "ci_high": fit["slope_ci_high"]},
                {"ci_low": g["slope_ci_low"], "ci_high": g["slope_ci_high"]},
            )
            for t, g in group.items()
            if t != best
        ):
            verdicts.append(
                {
                    "rule": named,
                    "when": when,
                    "tools": [],
                    "evidence": f"no measurable difference (the 95% intervals overlap); {evidence}",
                }
            )
        else:
            verdicts.append({"rule": named, "when": when, "tools": [best], "evidence": evidence})
    return verdicts


def recommendations(results: dict[str, Any]) -> list[dict[str, Any]]:
    figures = results["figures"]
    profile = _profile(results)
    out: list[dict[str, Any]] = []
    for r in FIGURE_RULES:
        out += figure_verdicts(r, _medians(results, r.figure, r.params), figures, profile)
    for rule, when, shape in SLOPE_RULES:
        fits = {
            f["tool"]: f
            for f in results["fits"]
            if f["shape"] == shape and f["profile"] == profile and f["tool"] != BASELINE
        }
        out += slope_verdicts(rule, when, fits, profile)
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
