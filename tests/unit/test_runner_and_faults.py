"""Code tier: the baseline runner honours retries, and every injected fault behaves."""

from __future__ import annotations

import gc
import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared_ml.config import FaultSpec, PipelineConfig
from shared_ml.errors import ConfigError, InjectedNonRetryableError, InjectedTransientError
from shared_ml.faults import FAULTS_ENV, apply_faults, count_attempt, faults_for
from shared_ml.records import RunRecord, collect_run_record, read_step_records, step_log_path
from shared_ml.runner import new_run_id, run_pipeline
from tests.conftest import CONFIGS, REPO_ROOT
from tests.unit.helpers import small_config


def test_transient_fault_retried_then_succeeds(orchbench_home: Path) -> None:
    delays: list[float] = []
    config = small_config(faults={"train": {"transient_attempts": 2}})
    record = run_pipeline(config, sleep=delays.append)
    assert record.status == "success"
    # A fault on a per-candidate step hits every branch: each retries on its own.
    for candidate in config.candidate_names:
        attempts = record.attempts("train", candidate)
        assert [a.outcome for a in attempts] == ["failed", "failed", "success"]
        assert attempts[0].error and attempts[0].error.retryable
    # the spec's policy, per branch: 1 s, then backoff x2
    assert sorted(delays) == sorted([1.0, 2.0] * len(config.candidate_names))


def test_retries_exhausted_fails_run(orchbench_home: Path) -> None:
    config = small_config(faults={"validate": {"transient_attempts": 5}})
    record = run_pipeline(config, sleep=lambda s: None)
    assert record.status == "failed"
    assert len(record.attempts("validate")) == 3  # 1 + max_retries(2)
    assert not record.attempts("preprocess")


def test_non_retryable_fault_fails_at_once(orchbench_home: Path) -> None:
    config = small_config(faults={"evaluate": {"non_retryable": True}})
    record = run_pipeline(config, sleep=lambda s: pytest.fail("must not retry"))
    assert record.status == "failed"
    # The first failing branch stops the run: no branch is retried, nothing downstream runs.
    evaluations = record.attempts("evaluate")
    assert evaluations and len({e.branch for e in evaluations}) == len(evaluations)
    for only in evaluations:
        assert only.error and not only.error.retryable
        assert "non-retryable" in only.error.message
    assert not record.attempts("select")


def test_data_validation_error_is_not_retried(orchbench_home: Path) -> None:
    config = small_config(validation={"min_rows": 10_000})
    record = run_pipeline(config, sleep=lambda s: pytest.fail("must not retry"))
    (only,) = record.attempts("validate")
    assert only.outcome == "failed" and "min_rows" in only.error.message


def test_delay_fault_is_recorded_in_duration(orchbench_home: Path) -> None:
    record = run_pipeline(small_config(faults={"register": {"delay_s": 0.3}}))
    (register,) = record.attempts("register")
    assert register.duration_s >= 0.3


def test_attempts_counted_durably_across_processes(tmp_path: Path) -> None:
    code = (
        "import sys; from shared_ml.faults import count_attempt; "
        "print(count_attempt(sys.argv[1], 'run-x', 'train'))"
    )
    seen = [
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO_ROOT,
        ).stdout.strip()
        for _ in range(3)
    ]
    assert seen == ["1", "2", "3"]
    assert count_attempt(str(tmp_path), "run-y", "train") == 1


def test_apply_faults_per_attempt() -> None:
    spec = FaultSpec(transient_attempts=1)
    with pytest.raises(InjectedTransientError):
        apply_faults(spec, "train", 1)
    apply_faults(spec, "train", 2)
    with pytest.raises(InjectedNonRetryableError):
        apply_faults(FaultSpec(non_retryable=True), "train", 7)


def test_env_faults_override_config(monkeypatch: pytest.MonkeyPatch) -> None:
    config = small_config(faults={"train": {"delay_s": 1}})
    monkeypatch.setenv(FAULTS_ENV, json.dumps({"train": {"transient_attempts": 3}}))
    assert faults_for(config, "train") == FaultSpec(transient_attempts=3)
    monkeypatch.setenv(FAULTS_ENV, "{not json")
    with pytest.raises(ConfigError, match=FAULTS_ENV):
        faults_for(config, "train")
    monkeypatch.setenv(FAULTS_ENV, json.dumps({"train": {"explode": True}}))
    with pytest.raises(ConfigError, match="explode"):
        faults_for(config, "train")


def run_baseline_process(run_id: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One baseline run of the default config in a fresh process (`python -m shared_ml`)."""
    command = [sys.executable, "-m", "shared_ml", "--config", str(CONFIGS / "default.yaml")]
    return subprocess.run(
        [*command, "--run-id", run_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_kill_fault_sigkills_the_process_mid_step(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ORCHBENCH_HOME": str(tmp_path),
        "PYTHONPATH": str(REPO_ROOT),
        FAULTS_ENV: json.dumps({"preprocess": {"kill_attempts": 1, "kill_after_s": 0.2}}),
    }
    done = run_baseline_process("killed-run", env)
    assert done.returncode == -signal.SIGKILL
    runs_root = str(tmp_path / "var" / "runs")
    steps = {r.step: r.outcome for r in read_step_records(runs_root, "killed-run")}
    assert steps == {"ingest": "success", "validate": "success", "preprocess": "running"}
    record = collect_run_record(
        runs_root=runs_root,
        run_id="killed-run",
        tool="local",
        pipeline="p",
        config_fingerprint="f",
        seed=1,
        status="failed",
    )
    assert record.attempts("preprocess")[0].outcome == "lost"
    # The second attempt in the same run is past kill_attempts and completes.
    again = run_baseline_process("killed-run", env)
    assert again.returncode == 0, again.stderr


def test_the_cli_pauses_the_collector_only_inside_the_block_and_restores_its_state() -> None:
    from shared_ml.__main__ import cyclic_gc_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("an import failed")
    assert gc.isenabled()  # re-enabled even when the block raised
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # a caller's own pause is left alone
    finally:
        gc.enable()


def test_barrier_makes_parallel_branches_overlap(orchbench_home: Path) -> None:
    """With a barrier on train, every branch's train starts before any of them ends on a
    runner that runs branches at once, however short the work is."""
    config = small_config(faults={"train": {"barrier": 3}})
    record = run_pipeline(config)
    assert record.status == "success"
    trains = [record.attempts("train", branch=c)[0] for c in config.candidate_names]
    assert len(trains) == 3
    assert max(t.started_at for t in trains) < min(t.ended_at for t in trains)  # type: ignore[type-var]
    log = read_step_log(config, record, "train", config.candidate_names[0])
    assert "barrier of 3: all arrived=True" in log


def test_barrier_times_out_when_branches_run_one_at_a_time(orchbench_home: Path) -> None:
    """One worker runs branches in turn: the barrier is never met, each train waits out its
    timeout and goes on, and no two trains overlap."""
    config = small_config(faults={"train": {"barrier": 3, "barrier_timeout_s": 0.3}})
    record = run_pipeline(config, max_workers=1)
    assert record.status == "success"
    trains = sorted(
        (record.attempts("train", branch=c)[0] for c in config.candidate_names),
        key=lambda t: t.started_at,
    )
    for earlier, later in itertools.pairwise(trains):
        assert earlier.ended_at <= later.started_at  # type: ignore[operator]
    assert "all arrived=False" in read_step_log(config, record, "train", config.candidate_names[0])


def read_step_log(config: PipelineConfig, record: RunRecord, step: str, branch: str) -> str:
    """The plain runner's log file of the first attempt of ``step[branch]``."""
    path = step_log_path(config.storage.runs_root, record.run_id, f"{step}[{branch}]", 1)
    assert path is not None
    return path.read_text()


@pytest.mark.parametrize("label", ["airflow+postgres", "prefect+postgres", "demo-local", "+"])
def test_a_run_id_made_from_any_tool_label_is_one_airflow_accepts(label: str) -> None:
    from benchmarks.tools.airflow.dags import SAFE_RUN_ID

    run_id = new_run_id(label)
    assert SAFE_RUN_ID.match(run_id), run_id
    assert run_id.startswith(label.replace("+", "-").strip("-") or "run")
    assert new_run_id(label) != run_id
