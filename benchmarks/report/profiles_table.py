"""The report's "Tool settings and concurrency" section, from what results.json recorded
per tool (``benchmarks.tools.profiles.report_entry``): the task concurrency of each tool
and, per tool, a table of the knobs each profile sets, with the reason and the tool's
documentation page. A tool without any knob gets no profile column but its reason."""

from __future__ import annotations

from typing import Any

NOT_RECORDED = "not recorded in this results.json (written before the profiles files)"


def settings_sections(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One section per tool, in the plan's tool order."""
    sections = []
    for tool, entry in results["tools"].items():
        concurrency = entry.get("concurrency") or {}
        knobs = entry.get("knobs")
        sections.append(
            {
                "tool": tool,
                "file": entry.get("settings_file") or "-",
                "recorded": knobs is not None,
                "has_knobs": bool(entry.get("has_knobs")),
                "note": entry.get("note") or "",
                "concurrency": concurrency.get("statement") or NOT_RECORDED,
                "slots": concurrency.get("slots"),
                "profiles": list(entry.get("profiles", {})),
                "rows": [_row(k) for k in knobs or []],
            }
        )
    return sections


def _row(knob: dict[str, Any]) -> dict[str, str]:
    # Markdown table cells: a "|" would end the cell.
    return {key: str(knob.get(key) or "-").replace("|", "/") for key in KNOB_COLUMNS}


KNOB_COLUMNS = ("profile", "knob", "value", "reason", "doc")


def equal_concurrency(sections: list[dict[str, Any]]) -> str:
    """One sentence: the concurrency every tool ran at, and which differ."""
    by_slots: dict[Any, list[str]] = {}
    for s in sections:
        by_slots.setdefault(s["slots"], []).append(s["tool"])
    if None in by_slots:
        return "Task concurrency: " + NOT_RECORDED + " for " + ", ".join(by_slots[None]) + "."
    parts = [f"{slots} at once: {', '.join(tools)}" for slots, tools in sorted(by_slots.items())]
    return "Tasks of one run (candidate branches, fan-out leaves): " + "; ".join(parts) + "."
