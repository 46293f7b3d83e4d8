"""The report's "By CPU model" table. A resumed benchmark may run its sessions on machines
of the same size but a different CPU (a reboot can land on other hardware); its figures
pool the repetitions across them. This table splits a few headline figures by the CPU
model of the session that measured them, so a reader can see what the pooling hides."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from benchmarks.report.figure_tables import fmt

# One figure per scenario family a reader compares tools on: run time, the tool's own
# share of it, start-up and load.
SPLIT_FIGURES = (
    "latency.end_to_end_s",
    "latency.overhead_s",
    "setup.cold_start_s",
    "throughput.runs_per_min",
)


def _session_cpus(results: dict[str, Any]) -> dict[tuple[int, str, str], str]:
    """(repetition, profile, tool label) -> the CPU model its session ran on."""
    return {
        (s["repetition"], s["profile"], s["tool"]): s["cpu_model"]
        for s in results.get("sessions", [])
        if s.get("cpu_model")
    }


def cpu_models(results: dict[str, Any]) -> list[str]:
    """The CPU models the sessions ran on, in the order they first appeared."""
    ordered = sorted(results.get("sessions", []), key=lambda s: s["started_at"])
    return list(dict.fromkeys(s["cpu_model"] for s in ordered if s.get("cpu_model")))


def cpu_text(results: dict[str, Any]) -> str:
    """The Machine table's CPUs cell: every model with its session count when the
    sessions ran on more than one, so the first session's model is not taken for all."""
    count = results["machine"].get("cpu_count")
    models = Counter(s["cpu_model"] for s in results.get("sessions", []) if s.get("cpu_model"))
    if len(models) < 2:
        return f"{count} x {results['machine'].get('cpu_model', 'unknown')}"
    return f"{count}, by session: " + ", ".join(
        f"{model} ({n} sessions)" for model, n in models.most_common()
    )


def cpu_split_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per figure and tool/profile: the median and count of its repetitions on each CPU
    model. Empty when every session ran on one model."""
    models = cpu_models(results)
    if len(models) < 2:
        return []
    cpu_of = _session_cpus(results)
    values: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    for o in results["observations"]:
        if o["figure"] not in SPLIT_FIGURES:
            continue
        model = cpu_of.get((o["repetition"], o["profile"], o["tool"]))
        if model is None:
            continue
        key = (o["figure"], o["tool"], o["profile"])
        values.setdefault(key, {}).setdefault(model, []).append(o["value"])
    rows = []
    for figure, tool, profile in sorted(values, key=lambda k: (SPLIT_FIGURES.index(k[0]), k[1:])):
        per_model = values[(figure, tool, profile)]
        definition = results["figures"][figure]
        rows.append(
            {
                "figure": definition["name"],
                "unit": definition["unit"],
                "tool": tool,
                "profile": profile,
                "cells": [
                    f"{fmt(statistics.median(per_model[m]))} (n={len(per_model[m])})"
                    if m in per_model
                    else "-"
                    for m in models
                ],
            }
        )
    return rows
