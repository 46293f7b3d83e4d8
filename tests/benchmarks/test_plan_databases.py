"""The database dimension of a benchmark plan: Airflow and Prefect once per metadata
database, under their own label, and the adapter built for that database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.harness import runner
from benchmarks.harness.plan import PlanError, base_tool, database_of, session_order
from benchmarks.harness.session import Collected
from tests.benchmarks.test_harness_units import local_plan


def test_quick_plans_run_the_shipped_database_and_full_plans_both() -> None:
    assert local_plan().databases == ["sqlite"]
    full = local_plan(quick=False, repeat=1)
    assert full.databases == ["sqlite", "postgres"]
    assert full.backfill_dates >= 20 and local_plan().backfill_dates < 20  # quick: small
    assert full.tool_labels() == [
        "local",
        "airflow",
        "airflow+postgres",
        "prefect",
        "prefect+postgres",
        "kubeflow",
    ]
    sessions = {label for _, _, label in session_order(full)}
    assert sessions == set(full.tool_labels())


@pytest.mark.parametrize(
    ("label", "tool", "database"),
    [
        ("airflow", "airflow", "sqlite"),
        ("prefect+postgres", "prefect", "postgres"),
        ("kubeflow", "kubeflow", None),
        ("local", "local", None),
    ],
)
def test_a_label_names_its_tool_and_database(label: str, tool: str, database: str | None) -> None:
    assert (base_tool(label), database_of(label)) == (tool, database)


def test_the_profiles_are_compared_on_postgres_and_sqlite_runs_as_shipped() -> None:
    plan = local_plan(quick=False, repeat=1, tools=["airflow", "prefect", "kubeflow"])
    assert plan.profiles_for("airflow+postgres") == ["defaults", "tuned"]
    assert plan.profiles_for("prefect+postgres") == ["defaults", "tuned"]
    assert plan.profiles_for("airflow") == plan.profiles_for("prefect") == ["defaults"]
    assert plan.profiles_for("kubeflow") == ["defaults"]  # it has no knob
    assert sorted(session_order(plan)) == sorted(
        [
            (0, "defaults", "airflow"),
            (0, "defaults", "airflow+postgres"),
            (0, "tuned", "airflow+postgres"),
            (0, "defaults", "prefect"),
            (0, "defaults", "prefect+postgres"),
            (0, "tuned", "prefect+postgres"),
            (0, "defaults", "kubeflow"),
        ]
    )
    assert any("airflow, prefect on SQLite run as shipped" in note for note in plan.notes)


def test_tune_sqlite_or_sqlite_alone_runs_every_profile_on_sqlite() -> None:
    both = local_plan(quick=False, repeat=1, tools=["airflow"], tune_sqlite=True)
    assert both.profiles_for("airflow") == both.profiles_for("airflow+postgres")
    assert len(session_order(both)) == 4
    alone = local_plan(quick=False, repeat=1, tools=["airflow"], databases=["sqlite"])
    assert alone.profiles_for("airflow") == ["defaults", "tuned"]
    assert not any("as shipped" in note for note in alone.notes)


def test_bad_database_options_are_refused_naming_the_option() -> None:
    with pytest.raises(PlanError, match="--db mysql"):
        local_plan(databases=["mysql"])
    with pytest.raises(PlanError, match="--db applies to the local services only"):
        local_plan(
            target="cluster",
            databases=["postgres"],
            urls={"airflow": "http://127.0.0.1:1", "prefect": "http://127.0.0.1:2"},
            tools=["airflow", "prefect"],
        )


def test_the_postgres_session_builds_its_adapter_for_postgres(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The runner hands the label's database to the adapter, and keys results by label."""
    built: list[dict[str, Any]] = []

    def refuse(tool: str, **options: Any) -> Any:
        built.append({"tool": tool, **options})
        raise RuntimeError("not started in this test")

    monkeypatch.setattr(runner, "get_adapter", refuse)
    plan = local_plan(quick=False, repeat=1, tools=["airflow"], scenarios=["latency"])
    collected = Collected()
    runner.run_session(
        plan, "airflow+postgres", "defaults", 0, tmp_path, collected, lambda *_: None
    )
    assert built == [
        {
            "tool": "airflow",
            "target": "local",
            "url": None,
            "profile": "defaults",
            "database": "postgres",
            # a fresh home (and so database) per session
            "home": tmp_path / "homes" / "airflow+postgres-defaults-r0",
        }
    ]
    assert {o["tool"] for o in collected.outcomes} == {"airflow+postgres"}


def test_a_session_run_again_after_an_interruption_starts_from_an_empty_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--resume runs an interrupted session again: its half-used database must not stay."""
    home = tmp_path / "homes" / "prefect+postgres-tuned-r1"
    (home / "postgres").mkdir(parents=True)
    (home / "postgres" / "PG_VERSION").write_text("18")
    seen: list[list[Path]] = []

    def look(tool: str, **options: Any) -> Any:
        seen.append(sorted(options["home"].rglob("*")) if options["home"].exists() else [])
        raise RuntimeError("not started in this test")

    monkeypatch.setattr(runner, "get_adapter", look)
    plan = local_plan(quick=False, repeat=2, tools=["prefect"], scenarios=["latency"])
    runner.run_session(plan, "prefect+postgres", "tuned", 1, tmp_path, Collected(), lambda *_: None)
    assert seen == [[]]
