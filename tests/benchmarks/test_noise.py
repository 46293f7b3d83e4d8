"""The A/A noise floor: one tool's repetitions split by parity, compared like two tools."""

from __future__ import annotations

from benchmarks.harness.noise import aa_rows


def observation(tool: str, repetition: int, value: float) -> dict:
    return {
        "figure": "latency.end_to_end_s",
        "tool": tool,
        "profile": "defaults",
        "repetition": repetition,
        "params": {},
        "value": value,
    }


def test_a_steady_tool_shows_no_difference_from_itself() -> None:
    values = [10.0, 10.4, 9.8, 10.2, 10.1, 9.9]
    (row,) = aa_rows([observation("airflow", r, v) for r, v in enumerate(values)])
    assert row["n"] == [3, 3]
    assert row["medians"] == [10.0, 10.2]  # even reps 10, 9.8, 10.1; odd 10.4, 10.2, 9.9
    assert row["verdict"] == "no measurable difference"
    assert row["relative_difference"] == abs(10.0 - 10.2) / 10.1


def test_a_drifting_machine_shows_up_as_a_difference_between_halves() -> None:
    # even repetitions ran while something else loaded the machine
    values = [20.0, 10.0, 21.0, 10.5, 20.5, 10.2]
    (row,) = aa_rows([observation("prefect", r, v) for r, v in enumerate(values)])
    assert row["verdict"] == "a difference (noise alone)"


def test_one_repetition_gives_no_row_and_few_give_no_interval() -> None:
    assert aa_rows([observation("kubeflow", 0, 5.0)]) == []
    (row,) = aa_rows([observation("kubeflow", r, 5.0 + r) for r in range(4)])
    assert row["verdict"].startswith("no interval")
