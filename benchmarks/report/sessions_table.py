"""The report's "Sessions" section: when each session ran, how long it took and the
machine's load when it started, from results.json's ``sessions``. The figures of a
session measured on a busy machine are slower; this lets a reader check."""

from __future__ import annotations

import statistics
from typing import Any


def session_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """In the order they ran."""
    return sorted(results.get("sessions", []), key=lambda s: s["started_at"])


def sessions_summary(results: dict[str, Any]) -> str:
    sessions = results.get("sessions", [])
    if not sessions:
        return "No session conditions were recorded in this results.json."
    loads = [s["load_average_1m_at_start"] for s in sessions]
    hours = sum(s["duration_s"] for s in sessions) / 3600
    cpus = results.get("machine", {}).get("cpu_count")
    return (
        f"{len(sessions)} sessions, {hours:.1f} h in all. The 1-minute load average when a "
        f"session started: median {statistics.median(loads):.2f}, max {max(loads):.2f}"
        + (f", on {cpus} CPUs" if cpus else "")
        + ". It includes the tail of the session before (its services stopping), as "
        "sessions run back to back." + _revisions(sessions) + _machines(sessions)
    )


def _revisions(sessions: list[dict[str, Any]]) -> str:
    """Which code measured the sessions, when a resumed benchmark ran more than one."""
    counts: dict[str, int] = {}
    for s in sessions:
        revision = s.get("source_revision") or "not recorded"
        counts[revision] = counts.get(revision, 0) + 1
    if len(counts) < 2:
        return ""
    return (
        " Code revisions (the benchmark was resumed on newer code): "
        + ", ".join(
            f"{revision} ({n} session{'s' if n > 1 else ''})" for revision, n in counts.items()
        )
        + "."
    )


def _machines(sessions: list[dict[str, Any]]) -> str:
    """Which machine boots ran the sessions, when a resumed benchmark ran on more than one
    (after a reboot, or on another machine of the same kind): their figures are pooled."""
    counts: dict[str, int] = {}
    models: set[str] = set()
    for s in sessions:
        boot = s.get("boot_id") or "not recorded"
        counts[boot] = counts.get(boot, 0) + 1
        if s.get("cpu_model"):
            models.add(s["cpu_model"])
    if len(counts) < 2:
        return ""
    return (
        f" The sessions ran on {len(counts)} machine boots (boot id: sessions): "
        + ", ".join(f"{boot}: {n}" for boot, n in counts.items())
        + (f"; CPU models: {', '.join(sorted(models))}" if models else "")
        + ". Each repetition's figures are pooled across them."
    )
