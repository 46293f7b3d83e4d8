"""The report's figure tables: per scenario, one table per execution model (in-process,
process-per-task, pod-per-step) with a column per tool and profile, each cell a median with
its interval; and the fitted scaling lines. Their numbers never share a column across
execution models."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

BASELINE = "local"
MODEL_ORDER = ("in-process", "process-per-task", "pod-per-step", "unknown")


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit in ("yes=1",):
        return "yes" if value >= 1 else ("no" if value <= 0 else f"{value:.2f}")
    if float(value).is_integer() or abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return text


def _cell(row: dict[str, Any], unit: str) -> str:
    if row["n"] == 1:
        return f"{fmt(row['median'], unit)} (n=1)"
    if unit == "yes=1":
        return f"{fmt(row['median'], unit)} ({fmt(row['min'], unit)}..{fmt(row['max'], unit)}, n={row['n']})"
    interval = (
        f"CI {fmt(row['ci_low'], unit)}-{fmt(row['ci_high'], unit)}"
        if row.get("ci_low") is not None
        else "no CI"
    )
    return (
        f"{fmt(row['median'], unit)} [{interval}; range {fmt(row['min'], unit)}-"
        f"{fmt(row['max'], unit)}; p95 {fmt(row['p95'], unit)}; n={row['n']}]"
    )


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def figure_tables(results: dict[str, Any], scenario: str) -> list[dict[str, Any]]:
    """One table per execution model: rows = figures (and params), columns = tool/profile."""
    figures = results["figures"]
    rows = [r for r in results["summaries"] if figures[r["figure"]]["scenario"] == scenario]
    by_model: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_model[r["execution_model"]].append(r)
    tables = []
    for model in sorted(by_model, key=lambda m: MODEL_ORDER.index(m) if m in MODEL_ORDER else 9):
        model_rows = by_model[model]
        columns = sorted({(r["tool"], r["profile"]) for r in model_rows})
        lines: dict[tuple[str, str], dict[tuple[str, str], str]] = {}
        for r in model_rows:
            label = (r["figure"], _params_text(r["params"]))
            lines.setdefault(label, {})[(r["tool"], r["profile"])] = _cell(
                r, figures[r["figure"]]["unit"]
            )
        order = list(figures)
        body = [
            {
                "figure": figures[key]["name"]
                + (" (declared, not measured)" if figures[key].get("declared") else "")
                + (f" ({params})" if params else ""),
                "unit": figures[key]["unit"],
                "cells": [cells.get(c, "-") for c in columns],
            }
            for (key, params), cells in sorted(
                lines.items(),
                key=lambda item: (order.index(item[0][0]), _sort_params(item[0][1])),
            )
        ]
        body += _baseline_rows(results, scenario, columns)
        tables.append(
            {
                "model": model,
                "columns": [f"{tool} ({profile})" for tool, profile in columns],
                "rows": body,
            }
        )
    return tables


BASELINE_RATIOS = {"latency": ("latency.end_to_end_s", "latency.overhead_s")}


def _baseline_rows(
    results: dict[str, Any], scenario: str, columns: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """Rows "figure / plain-Python baseline" (medians, same profile): each tool against the
    baseline, inside its own execution model's table."""
    medians = {
        (r["figure"], r["tool"], r["profile"]): r["median"]
        for r in results["summaries"]
        if not r["params"]
    }
    rows = []
    for key in BASELINE_RATIOS.get(scenario, ()):
        cells = []
        for tool, profile in columns:
            base = medians.get((key, BASELINE, profile)) or medians.get((key, BASELINE, "defaults"))
            value = medians.get((key, tool, profile))
            cells.append(f"{value / base:.2f}x" if value is not None and base else "-")
        if any(c != "-" for c in cells):
            name = results["figures"][key]["name"]
            rows.append(
                {"figure": f"{name} / plain-Python baseline", "unit": "ratio", "cells": cells}
            )
    return rows


def _sort_params(text: str) -> tuple:
    parts = dict(p.split("=", 1) for p in text.split(", ") if "=" in p)
    return (parts.get("shape", ""), int(parts.get("size", 0) or 0))


def fit_tables(results: dict[str, Any]) -> list[dict[str, Any]]:
    by_model: dict[str, list[dict]] = defaultdict(list)
    for f in results["fits"]:
        by_model[f["execution_model"]].append(f)
    return [
        {
            "model": model,
            "rows": [
                {
                    "tool": f["tool"],
                    "profile": f["profile"],
                    "shape": f["shape"],
                    "slope": fmt(f["slope_s_per_task"]),
                    "intercept": fmt(f["intercept_s"]),
                    # Two points always lie on a line: R² says nothing until there are more.
                    "r2": "-" if f["r2"] is None or f["n_points"] <= 2 else f"{f['r2']:.3f}",
                    "sizes": ", ".join(map(str, f["sizes"])),
                    "n": f["n_points"],
                }
                for f in sorted(
                    by_model[model], key=lambda f: (f["shape"], f["tool"], f["profile"])
                )
            ],
        }
        for model in sorted(by_model, key=lambda m: MODEL_ORDER.index(m) if m in MODEL_ORDER else 9)
    ]
