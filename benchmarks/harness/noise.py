"""The noise floor: an A/A comparison of each tool against itself.

The repetitions of one tool and profile are split in two by parity (even-numbered vs
odd-numbered repetitions: separate sessions, interleaved with the other tools) and
compared as if they were two tools, with the same rule the verdicts use (bootstrap 95%
intervals of the medians). Two halves of one tool that "differ" show how large a
difference the machine's noise alone produces; a difference between tools smaller than
that is not evidence.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from benchmarks.harness.stats import MIN_N_FOR_INTERVAL, intervals_overlap, summarize

# Figures whose A/A row is shown: the run-time ones every tool measures.
AA_FIGURES = ("latency.end_to_end_s", "latency.overhead_s")


def aa_rows(observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    halves: dict[tuple[str, str, str], dict[int, list[float]]] = defaultdict(lambda: {0: [], 1: []})
    for o in observations:
        if o["figure"] in AA_FIGURES and not o["params"]:
            halves[(o["figure"], o["tool"], o["profile"])][o["repetition"] % 2].append(o["value"])
    rows = []
    for (figure, tool, profile), split in sorted(halves.items()):
        a, b = split[0], split[1]
        if not a or not b:
            continue  # one repetition: nothing to compare
        first, second = summarize(a).as_dict(), summarize(b).as_dict()
        decidable = min(len(a), len(b)) >= MIN_N_FOR_INTERVAL
        rows.append(
            {
                "figure": figure,
                "tool": tool,
                "profile": profile,
                "n": [len(a), len(b)],
                "medians": [first["median"], second["median"]],
                "relative_difference": abs(first["median"] - second["median"])
                / max(statistics.fmean([first["median"], second["median"]]), 1e-12),
                # what the verdict rule would conclude about two copies of the same tool
                "verdict": (
                    "no interval (fewer than 3 repetitions per half)"
                    if not decidable
                    else "no measurable difference"
                    if intervals_overlap(first, second)
                    else "a difference (noise alone)"
                ),
            }
        )
    return rows
