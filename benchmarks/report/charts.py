"""The report's figures (matplotlib, rendered to PNG bytes): bars with spread, scaling
lines with their fitted slopes, and a recovery timeline."""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt

MODEL_COLOURS = {
    "in-process": "#4C72B0",
    "process-per-task": "#DD8452",
    "pod-per-step": "#55A868",
    "unknown": "#8C8C8C",
}
OUTCOME_COLOURS = {
    "success": "#55A868",
    "failed": "#C44E52",
    "lost": "#8172B3",
    "running": "#CCB974",
}
BAR_FIGURES = (
    "latency.end_to_end_s",
    "latency.overhead_s",
    "setup.cold_start_s",
    "setup.idle_pss_mb",
    "setup.import_s",
    "setup.venv_size_mb",
)


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def bars_with_spread(results: dict[str, Any]) -> bytes | None:
    """Per figure, one horizontal bar per tool and profile: the median, with its bootstrap
    95% interval as whiskers (none below three repetitions: ``n`` is printed instead).
    Horizontal, so tool labels never overlap; colour = execution model."""
    keys = [
        k
        for k in BAR_FIGURES
        if any(r["figure"] == k and not r["params"] for r in results["summaries"])
    ]
    if not keys:
        return None
    rows_of = {
        k: sorted(
            (r for r in results["summaries"] if r["figure"] == k and not r["params"]),
            key=lambda r: (r["execution_model"], r["tool"], r["profile"]),
        )
        for k in keys
    }
    heights = [0.6 + 0.32 * len(rows_of[k]) for k in keys]
    fig, axes = plt.subplots(
        len(keys),
        1,
        figsize=(7.5, sum(heights) + 0.8),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    for ax, key in zip(axes[:, 0], keys, strict=True):
        rows = rows_of[key]
        positions = range(len(rows))
        medians = [r["median"] for r in rows]
        low = [r["median"] - r["ci_low"] if r.get("ci_low") is not None else 0 for r in rows]
        high = [r["ci_high"] - r["median"] if r.get("ci_high") is not None else 0 for r in rows]
        colours = [MODEL_COLOURS.get(r["execution_model"], "#8C8C8C") for r in rows]
        ax.barh(positions, medians, xerr=[low, high], color=colours, capsize=3, height=0.6)
        ax.set_yticks(positions, [f"{r['tool']} ({r['profile']})" for r in rows], fontsize=7)
        ax.invert_yaxis()
        for y, r in zip(positions, rows, strict=True):
            note = f" {r['median']:.3g}" + ("" if r.get("ci_low") is not None else f" (n={r['n']})")
            ax.annotate(note, (r["median"] + (high[y] or 0), y), fontsize=6, va="center")
        figure = results["figures"][key]
        ax.set_title(f"{figure['name']} ({figure['unit']}): median, 95% CI", fontsize=8, loc="left")
        ax.tick_params(axis="x", labelsize=7)
        ax.margins(x=0.18)
    models = [m for m in MODEL_COLOURS if m != "unknown"]
    handles = [plt.Rectangle((0, 0), 1, 1, color=MODEL_COLOURS[m]) for m in models]
    fig.legend(handles, models, loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return _png(fig)


def scaling_lines(results: dict[str, Any]) -> bytes | None:
    """End to end against size: every repetition's points and the fitted line, with the
    slope, its 95% interval and R² in the legend, which sits below the plot so it never
    covers a line."""
    points: dict[tuple, list[tuple[int, float]]] = defaultdict(list)
    for o in results["observations"]:
        if o["figure"] == "scaling.end_to_end_s":
            key = (o["params"]["shape"], o["tool"], o["profile"], o["execution_model"])
            points[key].append((o["params"]["size"], o["value"]))
    if not points:
        return None
    fits = {(f["shape"], f["tool"], f["profile"]): f for f in results["fits"]}
    shapes = [s for s in ("chain", "fanout") if any(k[0] == s for k in points)]
    fig, axes = plt.subplots(1, len(shapes), figsize=(6 * len(shapes), 5.2), squeeze=False)
    for ax, shape in zip(axes[0], shapes, strict=True):
        for (s, tool, profile, model), pts in sorted(points.items()):
            if s != shape:
                continue
            xs, ys = zip(*pts, strict=True)
            label = f"{tool} ({profile}, {model})"
            fit = fits.get((shape, tool, profile))
            line = "-" if profile == "defaults" else "--"
            scatter = ax.scatter(xs, ys, s=14)
            if fit:
                label += ": " + _slope_label(fit)
                grid = [min(xs), max(xs)]
                ax.plot(
                    grid,
                    [fit["intercept_s"] + fit["slope_s_per_task"] * x for x in grid],
                    line,
                    color=scatter.get_facecolor()[0],
                )
            scatter.set_label(label)
        ax.set_title("chain of N tasks" if shape == "chain" else "fan-out of width W", fontsize=10)
        ax.set_xlabel("N" if shape == "chain" else "W")
        ax.set_ylabel("end to end (s)")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    fig.tight_layout()
    return _png(fig)


def _slope_label(fit: dict[str, Any]) -> str:
    slope = f"{fit['slope_s_per_task']:.3f} s/task"
    if fit.get("slope_ci_low") is not None and fit.get("slope_ci_high") is not None:
        slope += f" [{fit['slope_ci_low']:.3f}, {fit['slope_ci_high']:.3f}]"
    if fit.get("r2") is not None:
        slope += f", R² {fit['r2']:.2f}"
    return slope


def recovery_timelines(results: dict[str, Any]) -> dict[str, bytes]:
    """One chart per recovery scenario that recorded a timeline: ``timeline_<scenario>``."""
    scenarios = dict.fromkeys(t["scenario"] for t in results["timelines"])
    charts = {f"timeline_{s}": recovery_timeline(results, s) for s in scenarios}
    return {name: png for name, png in charts.items() if png is not None}


def recovery_timeline(results: dict[str, Any], scenario: str) -> bytes | None:
    """Step attempts of the scenario's run in each tool (first repetition, first profile
    each tool ran) over time, with the moments of the disruption marked."""
    first_profile: dict[str, str] = {}
    for t in results["timelines"]:
        if t["scenario"] == scenario and t["repetition"] == 0:
            first_profile.setdefault(t["tool"], t["profile"])
    timelines = [
        t
        for t in results["timelines"]
        if t["scenario"] == scenario
        and t["repetition"] == 0
        and t["profile"] == first_profile.get(t["tool"])
    ]
    if not timelines:
        return None
    fig, axes = plt.subplots(
        len(timelines),
        1,
        figsize=(
            10,
            1.2
            + 0.35 * max(len(t["events"]) for t in timelines) * len(timelines) / 2
            + 0.8 * len(timelines),
        ),
        squeeze=False,
    )
    for ax, timeline in zip(axes[:, 0], timelines, strict=True):
        events = timeline["events"]
        end = max(
            [e["end_s"] or e["start_s"] for e in events]
            + [m["at_s"] for m in timeline["markers"]]
            + [1]
        )
        marks = sorted(m["at_s"] for m in timeline["markers"])
        repeated = _duplicates(events)
        labels = []
        for row, e in enumerate(events):
            stop = e["end_s"]
            if stop is None:  # lost: it ended (unrecorded) at the next marker, e.g. the kill
                stop = next((m for m in marks if m > e["start_s"]), end)
            ax.barh(
                row,
                max(stop - e["start_s"], end * 0.004),  # keep sub-second steps visible
                left=e["start_s"],
                color=OUTCOME_COLOURS[e["outcome"]],
                hatch="///" if row in repeated else None,
                edgecolor="white" if row in repeated else None,
            )
            duplicate = " (duplicate)" if row in repeated else ""
            labels.append(f"{e['run']}: {e['step']} #{e['attempt']}{duplicate}")
        for index, marker in enumerate(timeline["markers"]):
            ax.axvline(marker["at_s"], color="black", linestyle=":", linewidth=1)
            ax.annotate(
                marker["label"],
                (marker["at_s"], len(events) - 0.6 - index * 1.2),
                fontsize=7,
                xytext=(3, 0),
                textcoords="offset points",
            )
        ax.set_xlim(left=0, right=end * 1.05)
        ax.set_yticks(range(len(events)), labels, fontsize=6)
        ax.invert_yaxis()
        ax.set_title(
            f"{timeline['tool']} ({timeline['profile']}, {timeline['execution_model']}): "
            f"{timeline['scenario']}",
            fontsize=9,
        )
        ax.set_xlabel("seconds since trigger", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in OUTCOME_COLOURS.values()]
    handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="#8C8C8C", hatch="///", ec="white"))
    names = [*OUTCOME_COLOURS, "duplicate: ran again after a success"]
    fig.legend(handles, names, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))  # room for the legend below the charts
    return _png(fig)


def _duplicates(events: list[dict[str, Any]]) -> set[int]:
    """Rows of executions that started after an earlier-started execution of the same
    task had succeeded (benchmarks.harness.recovery_counts' duplicates)."""
    first_success: dict[str, float] = {}
    for e in sorted(events, key=lambda e: e["start_s"]):
        if e["outcome"] == "success":
            first_success.setdefault(e["step"], e["start_s"])
    return {
        row
        for row, e in enumerate(events)
        if e["step"] in first_success and e["start_s"] > first_success[e["step"]]
    }


def all_charts(results: dict[str, Any]) -> dict[str, bytes]:
    charts = {
        "bars": bars_with_spread(results),
        "scaling": scaling_lines(results),
    }
    found = {name: png for name, png in charts.items() if png is not None}
    return {**found, **recovery_timelines(results)}
