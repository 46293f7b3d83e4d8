"""Pipelines vs ad-hoc scripts: the script does the pipeline's work, and under the same
faults the outcomes the report shows are the ones observed (nothing here is assumed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmarks import adhoc_script
from benchmarks.harness.adhoc import CASES, DAILY_DATES, compare
from shared_ml.config import load_config
from shared_ml.runner import run_pipeline
from tests.conftest import CONFIGS


def daily_config(folder: Path) -> Path:
    raw = yaml.safe_load((CONFIGS / "daily.yaml").read_text(encoding="utf-8"))
    raw["data"]["source"]["url"] = str(CONFIGS / "data" / "daily" / "{ds}.csv")
    path = folder / "daily.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict]:
    work = tmp_path_factory.mktemp("adhoc")
    rows = compare(work, CONFIGS / "default.yaml", daily_config(work), DAILY_DATES)
    return {(r["case"], r["runner"]): r for r in rows}


def test_every_case_is_measured_on_both_sides(outcomes: dict) -> None:
    assert set(outcomes) == {(c, r) for c in CASES for r in ("script", "pipeline")}


def test_the_script_loses_its_work_and_keeps_no_record(outcomes: dict) -> None:
    for case in ("transient", "kill"):
        script = outcomes[(case, "script")]
        assert not script["completed"] and script["human_reruns"] == 1
        assert script["failure_recorded"] is False  # nothing on disk says it failed
        # Every step it had finished before the fault ran again in the re-run.
        assert script["steps_redone"] >= 3 and script["work_lost_s"] > 0, script
    assert "killed by signal 9" in outcomes[("kill", "script")]["observed"]
    assert outcomes[("rerun", "script")]["duplicate_registry_entries"] >= 1
    backfill = outcomes[("backfill", "script")]
    assert backfill["completed"] and "no promotion decision" in backfill["observed"]


def test_the_pipeline_retries_resumes_and_registers_once(outcomes: dict) -> None:
    transient = outcomes[("transient", "pipeline")]
    assert transient["completed"] and transient["human_reruns"] == 0
    assert "attempts per branch: 2/2/2" in transient["observed"]  # one retry per branch
    assert transient["failure_recorded"] is True and transient["steps_redone"] == 0
    kill = outcomes[("kill", "pipeline")]
    assert (
        kill["failure_recorded"] is True and "resume in the same run: success" in kill["observed"]
    )
    assert kill["steps_redone"] == 0 and kill["work_lost_s"] == 0
    for case in CASES:
        assert outcomes[(case, "pipeline")]["duplicate_registry_entries"] == 0, case
    assert "already registered" in outcomes[("rerun", "pipeline")]["observed"]


def test_the_script_does_the_pipelines_work(orchbench_home: Path) -> None:
    config = load_config(CONFIGS / "default.yaml")
    record = run_pipeline(config)
    raw = yaml.safe_load((CONFIGS / "default.yaml").read_text(encoding="utf-8"))
    script = adhoc_script.run_once(raw, orchbench_home / "script", None)
    assert script["selected"] == record.selected_candidate
    assert script["metrics"] == record.metrics
