"""A benchmark resumed across machines of two CPU models: the report says so and splits
the headline figures by the CPU of the session that measured them."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

import pytest

from benchmarks.report.cpu_split import SPLIT_FIGURES
from benchmarks.report.figure_tables import fmt
from benchmarks.report.render import render_report

FIXTURE = Path(__file__).parent / "fixtures" / "results.json"
MODELS = ("Old CPU", "New CPU")


@pytest.fixture(scope="module")
def two_cpus() -> dict:
    """The fixture's sessions: repetition 0 on the first model, the rest on the second."""
    results = json.loads(FIXTURE.read_text(encoding="utf-8"))
    labels = sorted({(o["repetition"], o["profile"], o["tool"]) for o in results["observations"]})
    results["sessions"] = [
        {
            "repetition": repetition,
            "profile": profile,
            "tool": tool,
            "started_at": f"2026-11-30T1{repetition}:{i:02d}:00+00:00",
            "load_average_1m_at_start": 0.5,
            "duration_s": 60.0,
            "boot_id": f"boot{min(repetition, 1)}",
            "cpu_model": MODELS[min(repetition, 1)],
            "cpu_probe_s": 0.1,
        }
        for i, (repetition, profile, tool) in enumerate(labels)
    ]
    return results


def test_the_machine_table_names_every_cpu_model(two_cpus: dict, tmp_path: Path) -> None:
    markdown, html = (p.read_text() for p in render_report(two_cpus, tmp_path))
    counts = {m: sum(s["cpu_model"] == m for s in two_cpus["sessions"]) for m in MODELS}
    for model, n in counts.items():
        assert f"{model} ({n} sessions)" in markdown and f"{model} ({n} sessions)" in html
    assert "boot0: " + str(counts["Old CPU"]) + ", Old CPU" in markdown
    caveat = "The sessions ran on 2 CPU models (Old CPU, New CPU)"
    caveats = markdown.split("## Caveats", 1)[1].split("\n## ", 1)[0]
    assert caveat in caveats and caveat in html


def test_the_split_table_holds_each_cpus_own_median(two_cpus: dict, tmp_path: Path) -> None:
    markdown, html = (p.read_text() for p in render_report(two_cpus, tmp_path))
    assert "### By CPU model" in markdown and "<h3>By CPU model</h3>" in html
    header = "| figure | unit | tool | profile | Old CPU | New CPU |"
    assert header in markdown
    by_cpu: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for o in two_cpus["observations"]:
        if o["figure"] in SPLIT_FIGURES:
            model = MODELS[min(o["repetition"], 1)]
            by_cpu[(o["figure"], o["tool"], o["profile"])][model].append(o["value"])
    assert by_cpu
    for (figure, tool, profile), values in by_cpu.items():
        definition = two_cpus["figures"][figure]
        cells = [
            f"{fmt(statistics.median(values[m]))} (n={len(values[m])})" if values[m] else "-"
            for m in MODELS
        ]
        row = f"| {definition['name']} | {definition['unit']} | {tool} | {profile} | " + " | ".join(
            cells
        )
        assert row in markdown, row
