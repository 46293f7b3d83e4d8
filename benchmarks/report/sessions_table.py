"""The report's "Sessions" section: when each session ran, how long it took and the
machine's load when it started, from results.json's ``sessions``. The figures of a
session measured on a busy machine are slower; this lets a reader check."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any


def session_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """In the order they ran."""
    return sorted(results.get("sessions", []), key=lambda s: s["started_at"])


def sessions_span(results: dict[str, Any]) -> str:
    """When the sessions ran, wall clock: a resumed benchmark's ``duration_s`` counts only
    the time it measured, not the pauses between its runs."""
    sessions = session_rows(results)
    if not sessions:
        return ""
    first = datetime.fromisoformat(sessions[0]["started_at"])
    end = max(
        datetime.fromisoformat(s["started_at"]) + timedelta(seconds=s["duration_s"])
        for s in sessions
    )
    return (
        f" Its {len(sessions)} sessions ran from {first:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}"
        " UTC (see Sessions)."
    )


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
        "sessions run back to back." + _quiet(sessions) + _revisions(sessions) + _machines(sessions)
    )


def _quiet(sessions: list[dict[str, Any]]) -> str:
    """How long the harness waited for a quiet CPU before the sessions (machine.py)."""
    waits = [s["quiet_wait_s"] for s in sessions if s.get("quiet_wait_s") is not None]
    if not waits:
        return ""
    return (
        f" Before {len(waits)} of them the harness waited for the CPU to be under 25% busy"
        f" over 5 s: median {statistics.median(waits):.0f} s, max {max(waits):.0f} s."
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
    """Which machine boots ran the sessions and how fast the CPU was in each (the probe of
    benchmarks/harness/machine.py): a resumed benchmark may run after a reboot or on
    another machine of the same kind, and its figures are pooled across them."""
    boots: dict[str, list[dict[str, Any]]] = {}
    for s in sessions:
        boots.setdefault(s.get("boot_id") or "not recorded", []).append(s)
    probes = [s["cpu_probe_s"] for s in sessions if s.get("cpu_probe_s")]
    speed = (
        f" A fixed CPU probe before each session took median {statistics.median(probes):.3f} s"
        f" (range {min(probes):.3f} to {max(probes):.3f} s, {len(probes)} sessions); a "
        "slower or busier machine takes longer."
        if probes
        else ""
    )
    if len(boots) < 2:
        return speed
    models = sorted({s["cpu_model"] for s in sessions if s.get("cpu_model")})

    def boot_text(boot: str, members: list[dict[str, Any]]) -> str:
        boot_probes = [s["cpu_probe_s"] for s in members if s.get("cpu_probe_s")]
        probe = f", probe median {statistics.median(boot_probes):.3f} s" if boot_probes else ""
        boot_models = sorted({s["cpu_model"] for s in members if s.get("cpu_model")})
        model = f", {' / '.join(boot_models)}" if len(models) > 1 and boot_models else ""
        return f"{boot}: {len(members)}{model}{probe}"

    return (
        speed
        + f" The sessions ran on {len(boots)} machine boots (boot id: sessions): "
        + "; ".join(boot_text(boot, members) for boot, members in boots.items())
        + (f"; CPU models: {', '.join(models)}" if models else "")
        + ". Each repetition's figures are pooled across them"
        + (
            "; the table 'By CPU model' splits the headline figures by CPU."
            if len(models) > 1
            else "."
        )
    )
