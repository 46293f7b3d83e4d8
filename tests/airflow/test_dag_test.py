"""``dag.test()``: the whole ML DAG in one process, no scheduler, no API server (mapped
branches included: ``dag.test`` runs them one after another)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from benchmarks.tools.airflow.services import ServiceSettings, airflow_env, free_port
from shared_ml.records import read_step_records
from shared_ml.spec import PIPELINE
from tests.airflow.conftest import REPO_ROOT, AirflowTestInstance

# One candidate (one mapped branch): dag.test runs tasks one by one, so fewer is faster.
ONE_BRANCH_CONFIG = REPO_ROOT / "configs" / "bench-pipeline.yaml"

pytestmark = pytest.mark.slow

SCRIPT = """
import json, sys
from pipelines.airflow.pipeline import ml_dag
from pipelines.airflow.tasks import records_run_id
run = ml_dag.test(run_conf=json.loads(sys.argv[1]))
print("RESULT " + json.dumps({"state": str(run.state), "run_id": records_run_id(run.run_id)}))
"""


def test_dag_test_runs_every_step_in_process(airflow: AirflowTestInstance) -> None:
    # A private metadata DB (a copy of the freshly migrated one): the running scheduler
    # must not see, or pick up, this run.
    home = airflow.root / "dag_test_home"
    home.mkdir()
    shutil.copy(airflow.template_db, home / "airflow.db")
    env = airflow_env(ServiceSettings(home=home, port=free_port()))
    env["ORCHBENCH_HOME"] = str(airflow.orchbench_home)
    conf = {"config_path": str(ONE_BRANCH_CONFIG), "seed": 42}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert result["state"].endswith("success"), done.stderr[-3000:]
    records = read_step_records(airflow.config().storage.runs_root, result["run_id"])
    candidates = airflow.config(ONE_BRANCH_CONFIG).candidate_names
    assert sorted(r.key for r in records) == sorted(PIPELINE.expand(candidates))
    assert all(r.outcome == "success" and r.attempt == 1 for r in records)
    select = next(r for r in records if r.step == "select")
    assert select.metadata["selected"] in candidates and select.metadata["prediction_hash"]
    # A manual run without a logical date stands for the day it ran.
    ingest = next(r for r in records if r.step == "ingest")
    assert ingest.metadata["logical_date"] == ingest.started_at.date().isoformat()
