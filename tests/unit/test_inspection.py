"""``orchbench runs / show / registry / logs`` on the plain runner's real records, and
``runs`` over records of every tool."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks.cli import app
from shared_ml.config import load_config
from shared_ml.records import StepRecord, collect_run_record, write_run_record, write_step_record
from shared_ml.spec import PIPELINE
from tests.unit.test_cli_run import daily_config


def orchbench(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One ORCHBENCH_HOME for the module: the runs are made once and only read."""
    path = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ORCHBENCH_HOME", str(path))
        patch.delenv("ORCHBENCH_FAULTS", raising=False)
        yield path


@pytest.fixture(scope="module")
def daily(home: Path) -> Path:
    return daily_config(home)


@pytest.fixture(scope="module")
def two_runs(daily: Path) -> dict[str, str]:
    """A clean run for 2026-01-01, and one for 2026-01-02 in which every train branch
    failed its first attempt (an injected transient fault) and was retried."""
    code, _, err = orchbench("run", "--config", daily, "--date", "2026-01-01", "--run-id", "ok")
    assert code == 0, err
    code, _, err = orchbench(
        "run",
        "--config",
        daily,
        "--date",
        "2026-01-02",
        "--run-id",
        "retried",
        "--fault",
        "train:transient_attempts=1",
    )
    assert code == 0, err
    return {"ok": "2026-01-01", "retried": "2026-01-02"}


def test_runs_lists_every_run_newest_first(two_runs: dict[str, str], daily: Path) -> None:
    code, out, _ = orchbench("runs", "--config", daily, "--json")
    assert code == 0
    listed = json.loads(out)
    assert [r["run_id"] for r in listed] == ["retried", "ok"]
    for run in listed:
        assert run["logical_date"] == two_runs[run["run_id"]]
        assert run["status"] == "success" and run["duration_s"] > 0
        assert run["selected_candidate"] and set(run["metrics"]) >= {"accuracy", "f1"}
    code, out, _ = orchbench("runs", "--config", daily, "--tool", "airflow", "--json")
    assert (code, json.loads(out)) == (0, [])


def test_runs_lists_every_tools_records_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records of every tool in one runs root, written as the tools' own code writes them
    (step files, then ``collect_run_record`` and ``write_run_record``), started in an
    order that is neither the tools' order nor the run ids'."""
    monkeypatch.setenv("ORCHBENCH_HOME", str(tmp_path))
    config = daily_config(tmp_path)
    loaded = load_config(config)
    runs_root = loaded.storage.runs_root
    begin = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    started = {"prefect": 0, "kubeflow": 1, "local": 2, "airflow": 3}  # minutes after begin
    for tool, minutes in started.items():
        run_id = f"{tool}-run"
        at = begin + timedelta(minutes=minutes)
        step = StepRecord(step="ingest", attempt=1, started_at=at)
        step.ended_at, step.duration_s, step.outcome = at + timedelta(seconds=2), 2.0, "success"
        write_step_record(runs_root, run_id, step)
        record = collect_run_record(
            runs_root=runs_root,
            run_id=run_id,
            tool=tool,
            pipeline=PIPELINE.name,
            config_fingerprint=loaded.ml_fingerprint(),
            seed=loaded.seed,
            status="success",
        )
        write_run_record(runs_root, record)
    newest_first = sorted(started, key=started.__getitem__, reverse=True)

    code, out, err = orchbench("runs", "--config", config, "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert [(r["tool"], r["run_id"]) for r in listed] == [(t, f"{t}-run") for t in newest_first]
    assert all(r["status"] == "success" and r["duration_s"] == 2.0 for r in listed)
    for tool in started:
        code, out, err = orchbench("runs", "--config", config, "--tool", tool, "--json")
        assert code == 0, err
        assert [(r["tool"], r["run_id"]) for r in json.loads(out)] == [(tool, f"{tool}-run")]
    code, out, _ = orchbench("runs", "--config", config)  # the table names every tool too
    assert code == 0 and all(f"{tool}-run" in out for tool in started)


def test_show_has_attempts_durations_and_memory_per_step(
    two_runs: dict[str, str], daily: Path
) -> None:
    code, out, _ = orchbench("show", "retried", "--config", daily, "--json")
    assert code == 0
    steps = json.loads(out)["steps"]
    trains = [s for s in steps if s["step"] == "train"]
    for branch in {s["branch"] for s in trains}:
        attempts = [s for s in trains if s["branch"] == branch]
        assert [(s["attempt"], s["outcome"]) for s in attempts] == [(1, "failed"), (2, "success")]
    succeeded = [s for s in steps if s["outcome"] == "success"]
    assert all(s["duration_s"] > 0 and s["peak_rss_mb"] > 0 for s in succeeded)
    code, out, _ = orchbench("show", "retried", "--config", daily)
    assert code == 0 and "train[hgb]" in out and "attempt 2" in out


def test_registry_shows_versions_champion_and_history(
    two_runs: dict[str, str], daily: Path
) -> None:
    code, out, _ = orchbench("registry", "--config", daily, "--json")
    assert code == 0
    index = json.loads(out)
    dates = [v["logical_date"] for v in index["versions"]]
    assert dates == ["2026-01-01", "2026-01-02"]
    first, second = index["versions"]
    assert first["promoted"] and first["reason"] == "first model to pass the gate"
    # the second date's model was promoted only if it beat the first: the index says which
    assert index["champion"] == (2 if second["promoted"] else 1)
    assert second["champion_before"] == 1


def test_logs_show_the_injected_error_and_the_retry(two_runs: dict[str, str], daily: Path) -> None:
    code, out, err = orchbench(
        "logs",
        "retried",
        "--tool",
        "local",
        "--config",
        daily,
        "--step",
        "train[hgb]",
        "--attempt",
        "1",
    )
    assert code == 0, err
    assert "=== train[hgb] attempt 1 ===" in out
    assert "injected transient failure in step 'train'" in out and "retryable" in out
    code, out, _ = orchbench("logs", "retried", "--tool", "local", "--config", daily)
    assert code == 0
    # every step's last attempt, in order; the retried branches' second attempt succeeded
    assert out.count("=== ") == 12 and "=== train[hgb] attempt 2 ===" in out
    assert "train[hgb] succeeded in" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["show", "nope"], 1, "no run 'nope'"),
        (["logs", "ok", "--tool", "airflow"], 2, "ran on local, not airflow"),
        (["logs", "ok", "--tool", "local", "--step", "fit"], 2, "--step 'fit': run ok has steps"),
        (
            ["logs", "ok", "--tool", "local", "--step", "score", "--attempt", "3"],
            2,
            "ran attempts [1]",
        ),
        (["logs", "ok", "--tool", "dagster"], 2, "--tool 'dagster'"),
        (["registry", "--name", "other"], 1, "no registry 'other'"),
        (["runs", "--tool", "dagster"], 2, "--tool 'dagster'"),
    ],
)
def test_bad_arguments_name_what_is_wrong(
    two_runs: dict[str, str], daily: Path, args: list[str], code: int, message: str
) -> None:
    got, _, err = orchbench(*args, "--config", daily)
    assert got == code
    assert message in " ".join(err.split())


def test_an_unreadable_run_record_is_named_and_skipped(
    two_runs: dict[str, str], daily: Path, home: Path
) -> None:
    broken = next(home.rglob("runs/ok/run.json"))
    good = broken.read_text(encoding="utf-8")
    broken.write_text("{not json", encoding="utf-8")
    try:
        code, out, err = orchbench("runs", "--config", daily, "--json")
    finally:
        broken.write_text(good, encoding="utf-8")
    assert code == 0
    assert [r["run_id"] for r in json.loads(out)] == ["retried"]
    assert "ok/run.json: not a readable run record" in err
