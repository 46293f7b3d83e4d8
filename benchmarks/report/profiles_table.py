"""The report's "Tool settings and concurrency" section, from what results.json recorded
per tool (``benchmarks.tools.profiles.report_entry``): the task concurrency of each tool
and, per tool, a table of the knobs each profile sets, with the reason and the tool's
documentation page. A tool without any knob gets no profile column but its reason."""

from __future__ import annotations

from typing import Any

NOT_RECORDED = "not recorded in this results.json (written before the profiles files)"


def settings_sections(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One section per settings file, in the plan's tool order: a tool and its PostgreSQL
    label (``airflow``, ``airflow+postgres``) share one file, so they share one table,
    which holds the knobs of every profile either ran."""
    merged: list[dict[str, Any]] = []
    for section in _tool_sections(results):
        same_file = next(
            (
                m
                for m in merged
                if section["recorded"]
                and m["recorded"]
                and m["file"] == section["file"]
                and m["concurrency"] == section["concurrency"]
            ),
            None,
        )
        if same_file is None:
            merged.append(section)
            continue
        same_file["tool"] += ", " + section["tool"]
        same_file["profiles_run"].update(section["profiles_run"])
        same_file["rows"] += [r for r in section["rows"] if r not in same_file["rows"]]
    for m in merged:
        m["rows"].sort(key=lambda r: r["profile"] != "every profile")  # stable: file order
    return merged


def _tool_sections(results: dict[str, Any]) -> list[dict[str, Any]]:
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
                "profiles_run": {tool: list(entry.get("profiles", {}))},
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
