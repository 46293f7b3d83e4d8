"""Code tier: `orchbench run` and `orchbench backfill --tool local` end to end, as a user
runs them (a subprocess each, with a private ORCHBENCH_HOME)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import yaml

from shared_ml.config import load_config
from shared_ml.records import RunRecord
from shared_ml.registry import ModelRegistry
from shared_ml.spec import PIPELINE
from tests.conftest import CONFIGS, REPO_ROOT

BACKFILL_DATES = [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)]


def orchbench(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.cli", *args],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": "/usr/bin:/bin", "ORCHBENCH_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)},
    )


def daily_config(home: Path) -> Path:
    """configs/daily.yaml reading the repository's partitions (storage stays in ``home``)."""
    raw = yaml.safe_load((CONFIGS / "daily.yaml").read_text(encoding="utf-8"))
    raw["data"]["source"]["url"] = str(CONFIGS / "data" / "daily" / "{ds}.csv")
    path = home / "daily.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_run_json_prints_one_record_per_branch_step(tmp_path: Path) -> None:
    done = orchbench(
        "run",
        "--config",
        str(CONFIGS / "default.yaml"),
        "--date",
        "2026-01-02",
        "--json",
        home=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    record = RunRecord.model_validate_json(done.stdout)
    assert record.tool == "local" and record.status == "success"
    assert record.logical_date == date(2026, 1, 2)
    candidates = load_config(CONFIGS / "default.yaml").candidate_names
    assert len(candidates) >= 3
    assert sorted(s.key for s in record.steps) == sorted(PIPELINE.expand(candidates))
    assert {s.branch for s in record.steps if s.step == "train"} == set(candidates)
    assert record.selected_candidate in candidates
    assert record.scoring["scored"] is True
    on_disk = json.loads((tmp_path / "var" / "runs" / record.run_id / "run.json").read_text())
    assert on_disk["prediction_hash"] == record.prediction_hash
    assert record.versions["scikit-learn"]


def test_run_human_output_and_failure_exit_code(tmp_path: Path) -> None:
    done = orchbench(
        "run",
        "--config",
        str(CONFIGS / "default.yaml"),
        "--fault",
        "train:non_retryable=true",
        home=tmp_path,
    )
    assert done.returncode == 1
    assert "failed" in done.stdout and "train[" in done.stdout


def test_help_explains_itself(tmp_path: Path) -> None:
    done = orchbench("run", "--help", home=tmp_path)
    assert done.returncode == 0
    for option in ("--tool", "--config", "--json", "--fault", "--seed", "--date"):
        assert option in done.stdout


def registry_versions(home: Path, config: Path) -> list[dict]:
    loaded = load_config(config)
    return ModelRegistry(str(home / "var" / "registry"), loaded.name).read()["versions"]


def artifact_files(home: Path) -> set[Path]:
    return {p for p in (home / "var" / "artifacts").rglob("*") if p.is_file()}


def test_local_backfill_runs_each_date_on_its_partition_and_rerunning_adds_nothing(
    tmp_path: Path,
) -> None:
    config = daily_config(tmp_path)
    args = ("backfill", "--tool", "local", "--config", str(config))
    args += ("--start", "2026-01-01", "--end", "2026-01-03")
    done = orchbench(*args, "--json", home=tmp_path)
    assert done.returncode == 0, done.stderr
    records = [RunRecord.model_validate(r) for r in json.loads(done.stdout)]
    assert [r.logical_date for r in records] == BACKFILL_DATES
    assert all(r.status == "success" for r in records)
    for day in BACKFILL_DATES:  # progress, one line per date, on stderr
        assert f"{day}: success" in done.stderr
    # Each date trained on its own data: different predictions and metrics.
    assert len({r.prediction_hash for r in records}) == 3
    assert len({json.dumps(r.metrics, sort_keys=True) for r in records}) == 3

    # The registry holds one decision per date; the champion moves only when beaten.
    primary = load_config(config).gate.primary_metric
    versions = {v["version"]: v for v in registry_versions(tmp_path, config)}
    assert len(versions) == 3
    champion = None
    kept_champion_dates = []  # dates whose own model lost and were scored by the one in force
    for record in records:
        entry = versions[record.registry["version"]]
        assert entry["logical_date"] == record.logical_date.isoformat()
        assert entry["champion_before"] == champion
        beats = champion is None or (
            record.metrics[primary] > versions[champion]["metrics"][primary]
        )
        assert entry["promoted"] == (entry["gate_passed"] and beats), entry["reason"]
        if not entry["promoted"] and champion is not None:
            assert record.scoring["scored"] is True
            assert record.scoring["champion_version"] == entry["champion_before"]
            assert record.scoring["champion_version"] != record.registry["version"]
            kept_champion_dates.append(record.logical_date)
        champion = record.registry["version"] if entry["promoted"] else champion
        assert record.registry["champion_version"] == champion
        assert record.scoring.get("champion_version") == champion
    # Without such a date the test would not show the champion staying when not beaten.
    assert kept_champion_dates, [versions[r.registry["version"]]["reason"] for r in records]

    # The same backfill again: no new registry version, no new artifact file.
    files_before = artifact_files(tmp_path)
    again = orchbench(*args, home=tmp_path)
    assert again.returncode == 0, again.stderr
    for day in BACKFILL_DATES:
        assert str(day) in again.stdout
    assert len(registry_versions(tmp_path, config)) == 3
    assert artifact_files(tmp_path) == files_before


def test_run_on_a_date_without_a_partition_exits_2_naming_it_and_writes_nothing(
    tmp_path: Path,
) -> None:
    config = daily_config(tmp_path)
    partitions = sorted(
        date.fromisoformat(f.stem) for f in (CONFIGS / "data" / "daily").glob("*.csv")
    )
    missing = partitions[0] - timedelta(days=1)
    partition = CONFIGS / "data" / "daily" / f"{missing}.csv"
    assert not partition.exists()
    done = orchbench(
        "run", "--tool", "local", "--config", str(config), "--date", str(missing), home=tmp_path
    )
    assert done.returncode == 2, done.stderr
    assert "data.source.url" in done.stderr and str(partition) in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    # No run folder, no record, no artifact: the home holds only the config written above.
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("*")] == [Path("daily.yaml")]


def test_kubeflow_backfill_is_refused_with_the_cluster_alternative(tmp_path: Path) -> None:
    config = daily_config(tmp_path)
    done = orchbench(
        "backfill", "--tool", "kubeflow", "--config", str(config),
        "--start", "2026-01-01", "--end", "2026-01-02",
        home=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "not supported locally" in done.stderr
    assert "recurring run" in done.stderr and "docs/kubeflow.md" in done.stderr
    assert not (tmp_path / "var" / "runs").exists()


def test_bad_dates_exit_2_naming_the_problem_before_any_work(tmp_path: Path) -> None:
    config = str(daily_config(tmp_path))
    cases = {
        ("--start", "2026-01-03", "--end", "2026-01-01"): "--start 2026-01-03 is after --end",
        ("--start", "2026-13-01", "--end", "2026-01-01"): "--start: expected a date",
        ("--start", "2020-01-01", "--end", "2026-01-01"): "at most 366",
        # The first date has no partition file: named with its URL, nothing runs.
        ("--start", "2025-12-31", "--end", "2026-01-01"): "date 2025-12-31: data.source.url",
    }
    for dates, message in cases.items():
        done = orchbench("backfill", "--tool", "local", "--config", config, *dates, home=tmp_path)
        assert done.returncode == 2, (dates, done.stderr)
        assert message in done.stderr, done.stderr
    assert "2025-12-31.csv" in done.stderr
    bad_run = orchbench("run", "--config", config, "--date", "2026/01/02", home=tmp_path)
    assert bad_run.returncode == 2 and "--date" in bad_run.stderr
    assert not (tmp_path / "var" / "runs").exists()
