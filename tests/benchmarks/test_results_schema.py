"""results.json: the schema accepts what the harness writes and refuses anything else."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmarks.harness.figures import FIGURES
from benchmarks.harness.results import (
    RESULTS_SCHEMA_VERSION,
    InvalidResults,
    load_results,
    scaling_fits,
    summaries,
    validate_results,
    write_results,
)

FIXTURE = Path(__file__).parent / "fixtures" / "results.json"


@pytest.fixture
def results() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_fixture_is_valid(results: dict) -> None:
    validate_results(results)
    assert load_results(FIXTURE)["schema_version"] == RESULTS_SCHEMA_VERSION == 3


def test_every_figure_is_defined_with_unit_and_definition(results: dict) -> None:
    assert set(results["figures"]) == set(FIGURES)
    for key, figure in FIGURES.items():
        assert figure.unit and len(figure.definition) > 20, key


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda r: r["observations"][3].update(value="fast"), "observations/3/value"),
        (lambda r: r["plan"].update(target="moon"), "plan/target"),
        (lambda r: r.pop("machine"), "<root>"),
        (lambda r: r["outcomes"][0].update(status="meh"), "outcomes/0/status"),
        (lambda r: r.update(schema_version=1), "schema_version"),
        (lambda r: r["summaries"][0].pop("ci_low"), "summaries/0"),
        (lambda r: r["adhoc_comparison"][1].update(runner="cron"), "adhoc_comparison/1/runner"),
        (lambda r: r["adhoc_comparison"][0].pop("observed"), "adhoc_comparison/0"),
        # v3: each tool says, per profile, which path and database its figures come from
        (lambda r: r.update(schema_version=2), "schema_version: it is 2, this orchbench"),
        (lambda r: r["tools"]["prefect"].pop("execution_paths"), "tools/prefect"),
        (
            lambda r: r["tools"]["airflow"]["execution_paths"]["tuned"].pop("database"),
            "tools/airflow/execution_paths/tuned",
        ),
        (
            lambda r: r["tools"]["prefect"]["execution_paths"]["defaults"].update(
                execution_path=""
            ),
            "tools/prefect/execution_paths/defaults/execution_path",
        ),
        (
            lambda r: r["tools"]["local"]["execution_paths"].pop("tuned"),
            "tools/local/execution_paths: no execution path for profile.s. tuned",
        ),
    ],
)
def test_invalid_results_refused_naming_the_path(
    results: dict, mutate, path: str, tmp_path: Path
) -> None:
    broken = copy.deepcopy(results)
    mutate(broken)
    target = tmp_path / "results.json"
    with pytest.raises(InvalidResults, match=f"invalid at {path}"):
        write_results(broken, target)
    assert not target.exists()  # nothing half-written, nothing invalid written
    assert list(tmp_path.iterdir()) == []


def test_write_replaces_atomically(results: dict, tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    target.write_text("old")
    write_results(results, target)
    assert json.loads(target.read_text())["kind"] == "orchbench-benchmark-results"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_summaries_and_fits_are_recomputed_identically(results: dict) -> None:
    assert summaries(results["observations"]) == results["summaries"]
    assert scaling_fits(results["observations"]) == results["fits"]
    chain = next(
        f
        for f in results["fits"]
        if (f["tool"], f["profile"], f["shape"]) == ("airflow", "defaults", "chain")
    )
    # The fixture's airflow/defaults points follow 3 + 0.3 * size (+ 0.01 per repetition).
    assert chain["slope_s_per_task"] == pytest.approx(0.3, abs=1e-3)
    assert chain["intercept_s"] == pytest.approx(3.01, abs=1e-2)
