"""An interrupted benchmark goes on where it stopped (orchbench bench --resume), with the
same plan, and its report holds every session exactly once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from benchmarks.cli import app
from benchmarks.environments import REPO_ROOT
from benchmarks.harness import checkpoint, runner
from benchmarks.harness.bench import execute
from benchmarks.harness.checkpoint import CHECKPOINT
from benchmarks.harness.machine import boot_id, source_revision
from benchmarks.harness.plan import CONFIG_PATH_FIELDS, make_plan

cli = CliRunner()


def test_an_interrupted_benchmark_resumes_and_reports_every_session_once(
    orchbench_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = make_plan(
        tools=["local"],
        scenarios=["latency"],
        profiles=None,
        repeat=2,
        quick=False,
        target="local",
        urls={},
        output_dir=tmp_path / "reports",
        environ={},
    )
    plan.quiet_wait_s = 0.0  # a full plan's wait for a quiet CPU is not what this tests
    real_session = runner.run_session
    calls: list[int] = []

    def interrupted_at_the_second_session(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as Ctrl-C, or a stopped machine, would
        real_session(*args, **kwargs)

    monkeypatch.setattr(runner, "run_session", interrupted_at_the_second_session)
    with pytest.raises(KeyboardInterrupt):
        execute(plan)
    (folder,) = (tmp_path / "reports").iterdir()
    saved = json.loads((folder / CHECKPOINT).read_text(encoding="utf-8"))
    assert [tuple(k) for k in saved["done"]] == [(0, "defaults", "local")]
    assert not (folder / "results.json").exists()

    monkeypatch.setattr(runner, "run_session", real_session)
    done = cli.invoke(app, ["bench", "--resume", str(folder)])
    assert done.exit_code == 0, done.output
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    assert results["plan"]["order_seed"] == plan.order_seed  # the recorded plan, not a new one
    sessions = [(s["repetition"], s["tool"]) for s in results["sessions"]]
    assert sorted(sessions) == [(0, "local"), (1, "local")]
    assert {s["source_revision"] for s in results["sessions"]} == {source_revision()}
    assert {s["boot_id"] for s in results["sessions"]} == {boot_id()} != {"unknown"}
    assert all(s["cpu_probe_s"] > 0 for s in results["sessions"])
    ends = [o for o in results["observations"] if o["figure"] == "latency.end_to_end_s"]
    assert sorted(o["repetition"] for o in ends) == [0, 1]
    assert not (folder / CHECKPOINT).exists()  # finished: nothing left to resume


def test_resume_errors_name_the_problem(tmp_path: Path) -> None:
    def said(result: Any) -> str:  # the console wraps long lines where the path falls
        return " ".join(result.output.split())

    done = cli.invoke(app, ["bench", "--resume", str(tmp_path), "--repeat", "2"])
    assert done.exit_code == 2 and "drop --repeat" in said(done)
    done = cli.invoke(app, ["bench", "--resume", str(tmp_path)])
    assert done.exit_code == 2 and f"no {CHECKPOINT} there" in said(done)
    (tmp_path / CHECKPOINT).write_text('{"version": 2, "plan": {"tools": 3}}', encoding="utf-8")
    done = cli.invoke(app, ["bench", "--resume", str(tmp_path)])
    assert done.exit_code == 2 and "is invalid at plan" in said(done)


def test_a_checkpoint_names_the_repositorys_files_relatively_and_resumes_in_this_checkout(
    tmp_path: Path,
) -> None:
    """A checkpoint records the plan's config files relative to the repository, so it
    resumes in another checkout; a file outside the repository keeps its absolute path,
    and an older checkpoint's absolute paths still load."""
    outside = tmp_path / "mine.yaml"
    outside.write_text("seed: 1\n", encoding="utf-8")
    plan = make_plan(
        tools=["local"],
        scenarios=["latency"],
        profiles=["defaults"],
        repeat=1,
        quick=True,
        target="local",
        urls={},
        output_dir=tmp_path,
        environ={},
    )
    plan.adhoc_config = outside
    checkpoint.save(tmp_path, checkpoint.Checkpoint(plan=plan))
    stored = json.loads((tmp_path / CHECKPOINT).read_text(encoding="utf-8"))["plan"]
    assert stored["pipeline_config"] == "configs/bench-pipeline.yaml"
    assert stored["backfill_data"] == "configs/data/daily"
    assert stored["adhoc_config"] == str(outside)
    assert plan.describe()["backfill_config"] == "configs/daily.yaml"
    loaded = checkpoint.load(tmp_path).plan
    for name in CONFIG_PATH_FIELDS:
        assert getattr(loaded, name) == getattr(plan, name), name
    assert loaded.pipeline_config == REPO_ROOT / "configs" / "bench-pipeline.yaml"
    # A checkpoint written before paths were relative (absolute ones) loads as it was.
    stored["pipeline_config"] = str(REPO_ROOT / "configs" / "bench-pipeline.yaml")
    data = json.loads((tmp_path / CHECKPOINT).read_text(encoding="utf-8"))
    (tmp_path / CHECKPOINT).write_text(json.dumps({**data, "plan": stored}), encoding="utf-8")
    assert checkpoint.load(tmp_path).plan.pipeline_config == plan.pipeline_config
