"""Verdicts that hold: a winner only with non-overlapping 95% intervals, like with like,
and a slope that is distinguishable from 0."""

from __future__ import annotations

from benchmarks.harness.stats import fit_line, summarize
from benchmarks.report.recommend import FIGURE_RULES, figure_verdicts, slope_verdicts

END_TO_END = next(r for r in FIGURE_RULES if r.figure == "latency.end_to_end_s")
FIGURES = {"latency.end_to_end_s": {"name": "Pipeline end to end", "unit": "s"}}


def row(values: list[float], model: str = "process-per-task") -> dict:
    return {**summarize(values).as_dict(), "execution_model": model}


def test_separated_intervals_name_a_winner() -> None:
    rows = {"airflow": row([10, 10.5, 11, 10.2, 10.8]), "kubeflow": row([20, 21, 19.5, 20.5, 22])}
    (verdict,) = figure_verdicts(END_TO_END, rows, FIGURES, "defaults")
    assert verdict["tools"] == ["airflow"]
    ci = rows["airflow"]
    assert f"airflow 10.5 s [{ci['ci_low']:.3g}-{ci['ci_high']:.3g} s]" in verdict["evidence"]


def test_overlapping_intervals_mean_no_measurable_difference() -> None:
    rows = {"airflow": row([10, 12, 14, 11, 13]), "kubeflow": row([11, 13, 15, 12, 14])}
    (verdict,) = figure_verdicts(END_TO_END, rows, FIGURES, "defaults")
    assert verdict["tools"] == []
    assert verdict["evidence"].startswith("no measurable difference")


def test_too_few_repetitions_decide_nothing() -> None:
    rows = {"airflow": row([10, 10.1]), "kubeflow": row([20, 21])}
    (verdict,) = figure_verdicts(END_TO_END, rows, FIGURES, "defaults")
    assert verdict["tools"] == [] and "fewer than 3 repetitions" in verdict["evidence"]


def test_run_time_figures_are_compared_within_one_execution_model() -> None:
    rows = {
        "prefect": row([1, 1.1, 1.2], "in-process"),
        "airflow": row([10, 10.5, 11], "process-per-task"),
        "kubeflow": row([20, 21, 22], "process-per-task"),
    }
    verdicts = figure_verdicts(END_TO_END, rows, FIGURES, "defaults")
    # prefect is alone in its model: no verdict pits it against the others
    assert [(v["rule"], v["tools"]) for v in verdicts] == [
        ("fastest pipeline end to end (process-per-task)", ["airflow"])
    ]


def fit(sizes: list[int], seconds: list[float], model: str = "process-per-task") -> dict:
    line = fit_line(sizes, seconds)
    return {
        "slope_s_per_task": line.slope,
        "slope_ci_low": line.slope_ci_low,
        "slope_ci_high": line.slope_ci_high,
        "execution_model": model,
    }


def test_a_slope_not_distinguishable_from_zero_never_wins() -> None:
    sizes = [1, 10, 50, 1, 10, 50]
    fits = {
        "airflow": fit(sizes, [5.0, 4.0, 5.5, 4.5, 5.2, 4.8]),  # flat and noisy
        "kubeflow": fit(sizes, [3 + 0.5 * s for s in sizes]),
    }
    (verdict,) = slope_verdicts("lowest per-task cost in a chain", "w", fits, "defaults")
    assert verdict["tools"] == [] and "not distinguishable from 0" in verdict["evidence"]


def test_separated_positive_slopes_name_a_winner() -> None:
    sizes = [1, 10, 50, 1, 10, 50]
    fits = {
        "airflow": fit(
            sizes, [1 + 0.1 * s + e for s, e in zip(sizes, [0, 0.1, -0.1] * 2, strict=True)]
        ),
        "kubeflow": fit(
            sizes, [3 + 0.5 * s + e for s, e in zip(sizes, [0.1, 0, -0.1] * 2, strict=True)]
        ),
    }
    (verdict,) = slope_verdicts("lowest per-task cost in a chain", "w", fits, "defaults")
    assert verdict["tools"] == ["airflow"]


def test_a_declared_figure_never_decides() -> None:
    rule = next(r for r in FIGURE_RULES if r.figure == "setup.cluster_memory_request_mib")
    figures = {rule.figure: {"name": "Cluster memory requests", "unit": "MiB", "declared": True}}
    rows = {"airflow": row([900.0] * 5), "prefect": row([300.0] * 5)}
    (verdict,) = figure_verdicts(rule, rows, figures, "defaults")
    assert verdict["tools"] == [] and "declared in code" in verdict["evidence"]
