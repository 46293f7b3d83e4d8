"""Seeing inside a KFP run (issue 13), on the suite's two real local runs: ``clean_run`` (every
``train`` branch fails its first attempt with an injected transient fault, KFP retries it) and
``failed_run`` (``select`` fails with an injected non-retryable fault, the exit handler alerts).

- the step logs KFP streamed, kept per task and attempt, read back by ``orchbench logs``,
  shared_ml's log lines among them;
- duration, peak memory and attempts per step in the run record;
- the Metrics and ClassificationMetrics artifacts, read back from kfp.local's executor outputs,
  linked to the shared_ml store;
- the exit handler's e-mail, received by a real SMTP server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from benchmarks.cli import app
from benchmarks.tools.kubeflow.adapter import KubeflowAdapter
from pipelines.kubeflow.metadata import read_task_outputs
from shared_ml.artifacts import ArtifactStore, content_digest
from shared_ml.config import load_config
from shared_ml.records import RunRecord
from tests.kubeflow.conftest import ALERT_TO, DAILY_CONFIG, DEFAULT_CONFIG
from tests.smtp import SmtpServer

pytestmark = pytest.mark.slow

BRANCH = "train[forest]"


def orchbench(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def task_index(record: RunRecord) -> list[dict[str, Any]]:
    index = Path(record.tool_details["task_logs"])
    return [json.loads(line) for line in index.read_text().splitlines() if line]


# --- points 1 and 2: the step's log, through KFP's local outputs -----------------------
def test_orchbench_logs_shows_the_injected_error_in_the_kfp_step_log(
    clean_run: RunRecord,
) -> None:
    code, out, err = orchbench(
        "logs", clean_run.run_id, "--tool", "kubeflow", "--step", BRANCH, "--attempt", "1",
        "--config", DEFAULT_CONFIG,
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith(f"=== {BRANCH} attempt 1 ===\n")
    assert "injected transient failure in step 'train'" in out
    # shared_ml's records, as the component process wrote them into KFP's stream
    assert f"[{clean_run.run_id} {BRANCH} attempt 1] {BRANCH} started" in out
    assert f"[{clean_run.run_id} {BRANCH} attempt 1] {BRANCH} failed after" in out
    # and KFP's own lines around them: this is the task's stream, not shared_ml's file
    assert "[KFP Executor" in out and "Traceback" in out
    # only this branch's lines, though two iterations ran side by side
    assert "train[logreg]" not in out and "train[hgb]" not in out


def test_the_retry_has_its_own_log_with_the_end_figures(
    clean_run: RunRecord, kfp_home: Path
) -> None:
    text = KubeflowAdapter().step_log(DEFAULT_CONFIG, clean_run, BRANCH, 2)
    assert f"[{clean_run.run_id} {BRANCH} attempt 2] {BRANCH} succeeded in" in text
    assert "peak RSS" in text and "injected" not in text
    # the log sits next to the ParallelFor iteration's outputs in KFP's pipeline root
    (entry,) = [e for e in task_index(clean_run) if e["key"] == BRANCH and e["attempt"] == 2]
    log = Path(entry["log"])
    assert log.parent == Path(entry["task_root"]) and log.parent.name == "train"
    assert log.parent.parent.name.startswith("for-loop-")
    assert "-iteration-" in log.parent.parent.name
    assert log.is_relative_to(clean_run.tool_details["pipeline_root"])


def test_a_resume_continues_the_numbering_of_the_attempt_logs(
    failed_run: RunRecord, resumed_run: RunRecord
) -> None:
    """The failed run's select attempts and the resume's are one numbering, in the logs as in
    the step records: the resume's select is the next attempt, with its own log."""
    adapter = KubeflowAdapter()
    numbers = sorted(s.attempt for s in resumed_run.attempts("select"))
    assert numbers == list(range(1, len(failed_run.attempts("select")) + 2))
    for number in numbers:
        text = adapter.step_log(DAILY_CONFIG, resumed_run, "select", number)
        assert f"[{resumed_run.run_id} select attempt {number}] select started" in text
        failed = "injected non-retryable failure in step 'select'" in text
        assert failed == (number < numbers[-1]), number


# --- point 4: per-step duration, peak memory, attempts ----------------------------------
def test_the_record_has_duration_peak_memory_and_attempts_per_step(clean_run: RunRecord) -> None:
    attempts = sorted(clean_run.attempts("train", "forest"), key=lambda s: s.attempt)
    assert [(s.attempt, s.outcome) for s in attempts] == [(1, "failed"), (2, "success")]
    for step in clean_run.steps:
        assert step.duration_s is not None and step.duration_s > 0, step.key
        if step.outcome == "success":
            assert step.peak_rss_mb is not None and step.peak_rss_mb > 0, step.key
    # every attempt on record is one kfp.local execution, in the same order
    executions = {(e["key"], e["attempt"]) for e in task_index(clean_run)}
    assert {(s.key, s.attempt) for s in clean_run.steps} <= executions


# --- point 5: Metrics and ClassificationMetrics artifacts ------------------------------
def assert_links_to_the_store(metadata: dict[str, Any], data_key: str, digest_key: str) -> bytes:
    """The store URI holds bytes whose digest is the recorded one; returns the bytes."""
    root = load_config(DEFAULT_CONFIG).storage.artifact_root
    data = ArtifactStore(root).get_bytes(metadata[data_key])
    assert metadata[data_key].startswith(root + "/")
    assert content_digest(data) == metadata[digest_key]
    return data


def test_metrics_and_classification_artifacts_read_back_from_the_local_outputs(
    clean_run: RunRecord,
) -> None:
    evaluated = [
        e for e in task_index(clean_run) if e["key"].startswith("evaluate[") and e["attempt"] == 1
    ]
    assert len(evaluated) == len(load_config(DEFAULT_CONFIG).candidate_names)
    candidates = {row["candidate"]: row for row in clean_run.candidates}
    for entry in evaluated:
        outputs = read_task_outputs(entry["task_root"])
        metrics = outputs["metrics"]["metadata"]
        candidate = metrics["candidate"]
        assert entry["key"] == f"evaluate[{candidate}]"
        for name in ("accuracy", "f1", "roc_auc"):
            assert metrics[name] == candidates[candidate][name]
        evaluation = json.loads(assert_links_to_the_store(metrics, "store_uri", "blake3"))
        model = assert_links_to_the_store(metrics, "model_store_uri", "model_blake3")
        assert content_digest(model) == evaluation["model_digest"]

        classification = outputs["classification"]["metadata"]
        assert {k: classification[k] for k in ("store_uri", "blake3")} == {
            k: metrics[k] for k in ("store_uri", "blake3")
        }
        assert classification["model_blake3"] == metrics["model_blake3"]
        matrix = classification["confusionMatrix"]
        assert [a["displayName"] for a in matrix["annotationSpecs"]] == ["0", "1"]
        cells = [row["row"] for row in matrix["rows"]]
        correct = sum(cells[i][i] for i in range(2)) / sum(map(sum, cells))
        assert correct == pytest.approx(metrics["accuracy"])
        roc = classification["confidenceMetrics"]
        assert len(roc) >= 2 and classification["positive_class"] == "1"
        assert roc[0]["falsePositiveRate"] == 0 and roc[-1]["recall"] == 1
        assert all(0 <= p["confidenceThreshold"] <= 1 for p in roc)


def test_select_metrics_link_the_chosen_candidate_in_the_store(clean_run: RunRecord) -> None:
    (entry,) = [e for e in task_index(clean_run) if e["key"] == "select"]
    outputs = read_task_outputs(entry["task_root"])
    metrics = outputs["metrics"]["metadata"]
    assert metrics["candidate"] == clean_run.selected_candidate
    assert {k: metrics[k] for k in clean_run.metrics} == clean_run.metrics
    assert_links_to_the_store(metrics, "store_uri", "blake3")
    assert_links_to_the_store(metrics, "model_store_uri", "model_blake3")
    model = outputs["model"]["metadata"]
    assert (model["store_uri"], model["blake3"]) == (
        metrics["model_store_uri"],
        metrics["model_blake3"],
    )


# --- point 7: the exit handler's e-mail --------------------------------------------------
def test_exit_handler_emails_the_failure(
    failed_run: RunRecord, clean_run: RunRecord, smtp: SmtpServer
) -> None:
    messages = smtp.wait_for(1, timeout_s=60)
    (mail,) = [m for m in messages if failed_run.run_id in m["Subject"]]
    assert mail["To"] == ALERT_TO
    assert "kubeflow" in mail["Subject"] and "select" in mail["Subject"]
    assert "injected non-retryable failure in step 'select'" in mail.get_content()
    # the successful run sent none
    assert not [m for m in smtp.messages if clean_run.run_id in m["Subject"]]
