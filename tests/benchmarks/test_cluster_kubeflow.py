"""KFP cluster submission against a fake of ``kfp.Client`` (no KFP API can run here).

The fake keeps the server's state (pipelines, versions, experiments, runs, recurring runs)
and answers the ``display_name`` list filter as the KFP API server does (a field of the
jobs table: backend/src/apiserver/model/job.go at kubeflow/pipelines 2.17.0), so the tests
drive ``python -m pipelines.kubeflow.deploy``'s ``main`` end to end, only the client faked.

Issue 15 (defect 10, point 9): every submission used to create one more recurring run.
A submission now creates one only when asked (``--schedule``), and never a second one.

The step image: the IR is compiled with the local tag, while an EKS cluster pulls from ECR.
The submission uploads a copy of the IR with ``--image`` / ``$ORCHBENCH_KFP_IMAGE`` in every
executor, and the adapter passes that variable on.

The adapter's cluster path (points 2 and 6): the config by value, the record from the
cluster's object store (moto's S3 server on 127.0.0.1), a resume re-submitted to the
cluster, and no kfp.local run standing in for a cluster one.
"""

from __future__ import annotations

import itertools
import json
import sys
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from benchmarks.tools.base import CapabilityMissing
from benchmarks.tools.kubeflow import cluster
from benchmarks.tools.kubeflow.adapter import KubeflowAdapter
from pipelines.kubeflow import deploy
from pipelines.kubeflow.ir import ir_containers
from shared_ml.config import config_from_json
from shared_ml.errors import ConfigError
from shared_ml.records import read_run_record
from tests.cluster_support import write_select_record
from tests.unit.s3_server import s3_endpoint, use_endpoint  # noqa: F401  (fixture)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"  # has a cron schedule


class FakeKfpServer:
    """The state of one KFP API server, behind ``kfp.Client``'s method names."""

    def __init__(self) -> None:
        self.ids = (f"id-{n}" for n in itertools.count(1))
        self.pipelines: dict[str, str] = {}  # name -> id
        self.versions: list[SimpleNamespace] = []
        self.experiments: dict[str, str] = {}
        self.runs: list[dict[str, Any]] = []
        self.recurring: list[SimpleNamespace] = []
        self.deleted: list[str] = []
        self.uploaded: list[str] = []  # the text of every pipeline file uploaded

    @staticmethod
    def _name_in(filter_json: str | None) -> str | None:
        if not filter_json:
            return None
        [predicate] = json.loads(filter_json)["predicates"]
        assert (predicate["key"], predicate["operation"]) == ("display_name", "EQUALS")
        return predicate["stringValue"]

    # pipelines and versions
    def get_pipeline_id(self, name: str) -> str | None:
        return self.pipelines.get(name)

    def upload_pipeline(self, path: str, pipeline_name: str) -> SimpleNamespace:
        self.uploaded.append(Path(path).read_text(encoding="utf-8"))
        self.pipelines[pipeline_name] = next(self.ids)
        return SimpleNamespace(pipeline_id=self.pipelines[pipeline_name])

    def list_pipeline_versions(self, pipeline_id: str, filter: str) -> SimpleNamespace:
        name = self._name_in(filter)
        found = [v for v in self.versions if (v.pipeline_id, v.display_name) == (pipeline_id, name)]
        return SimpleNamespace(pipeline_versions=found or None)

    def upload_pipeline_version(
        self, path: str, pipeline_version_name: str, pipeline_id: str
    ) -> SimpleNamespace:
        self.uploaded.append(Path(path).read_text(encoding="utf-8"))
        version = SimpleNamespace(
            pipeline_version_id=next(self.ids),
            pipeline_id=pipeline_id,
            display_name=pipeline_version_name,
        )
        self.versions.append(version)
        return version

    # experiments and runs
    def create_experiment(self, name: str) -> SimpleNamespace:
        # kfp.Client.create_experiment returns the existing experiment of that name.
        return SimpleNamespace(experiment_id=self.experiments.setdefault(name, next(self.ids)))

    def run_pipeline(self, **kwargs: Any) -> SimpleNamespace:
        self.runs.append({"run_id": next(self.ids), **kwargs})
        return SimpleNamespace(run_id=self.runs[-1]["run_id"])

    def wait_for_run_completion(self, run_id: str, timeout: int) -> SimpleNamespace:
        return SimpleNamespace(state="SUCCEEDED")

    # recurring runs
    def list_recurring_runs(
        self, experiment_id: str, filter: str | None = None, page_size: int = 10
    ) -> SimpleNamespace:
        name = self._name_in(filter)
        found = [
            r
            for r in self.recurring
            if r.experiment_id == experiment_id and name in (None, r.display_name)
        ]
        return SimpleNamespace(recurring_runs=found[:page_size] or None)

    def create_recurring_run(self, **kwargs: Any) -> SimpleNamespace:
        recurring = SimpleNamespace(
            recurring_run_id=next(self.ids),
            display_name=kwargs["job_name"],
            experiment_id=kwargs["experiment_id"],
            pipeline_version_reference=SimpleNamespace(
                pipeline_id=kwargs["pipeline_id"], pipeline_version_id=kwargs["version_id"]
            ),
            request=kwargs,
        )
        self.recurring.append(recurring)
        return recurring

    def delete_recurring_run(self, recurring_run_id: str) -> dict:
        self.deleted.append(recurring_run_id)
        self.recurring = [r for r in self.recurring if r.recurring_run_id != recurring_run_id]
        return {}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeKfpServer:
    """``kfp.Client(host=...)`` answers from the fake; the reachability probe passes."""
    fake = FakeKfpServer()
    kfp = types.ModuleType("kfp")
    kfp.Client = lambda host: fake  # type: ignore[attr-defined]
    api = types.ModuleType("kfp_server_api")
    api.ApiException = type("ApiException", (Exception,), {})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kfp", kfp)
    monkeypatch.setitem(sys.modules, "kfp_server_api", api)
    monkeypatch.setattr(deploy, "check_reachable", lambda url: None)
    return fake


def submit(run_id: str, *extra: str, config: Path = DEFAULT_CONFIG) -> int:
    argv = ["--url", "http://kfp.test", "--config", str(config), "--run-id", run_id]
    return deploy.main([*argv, "--date", "2026-01-03", *extra])


def test_a_submission_creates_no_recurring_run_unless_asked(server: FakeKfpServer) -> None:
    assert submit("run-1") == 0
    assert submit("run-2") == 0
    assert [r["job_name"] for r in server.runs] == ["run-1", "run-2"]
    assert server.recurring == []


def test_asking_again_keeps_the_one_recurring_run(
    server: FakeKfpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert submit("run-1", "--schedule") == 0
    first = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert submit("run-2", "--schedule") == 0
    second = json.loads(capsys.readouterr().out.splitlines()[-1])

    [recurring] = server.recurring
    assert recurring.display_name == deploy.RECURRING_RUN_NAME
    assert recurring.request["cron_expression"] == "0 0 3 * * *"  # the config's, with seconds
    assert (first["recurring_run_created"], second["recurring_run_created"]) == (True, False)
    assert first["recurring_run_id"] == second["recurring_run_id"] == recurring.recurring_run_id
    assert server.deleted == []


def test_a_new_pipeline_version_replaces_the_old_recurring_runs(server: FakeKfpServer) -> None:
    experiment = server.create_experiment(deploy.EXPERIMENT).experiment_id
    stale = [
        server.create_recurring_run(
            job_name=deploy.RECURRING_RUN_NAME,
            experiment_id=experiment,
            pipeline_id="old-pipeline",
            version_id="old-version",
        )
        for _ in range(2)  # as left by the module that created one per submission
    ]
    assert submit("run-1", "--schedule") == 0
    [recurring] = server.recurring
    current = server.versions[-1].pipeline_version_id
    assert recurring.pipeline_version_reference.pipeline_version_id == current
    assert server.deleted == [r.recurring_run_id for r in stale]


def test_asking_for_a_schedule_the_config_lacks_is_refused_before_any_call(
    server: FakeKfpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unscheduled = tmp_path / "unscheduled.yaml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    unscheduled.write_text(text.replace('schedule: "0 3 * * *"', ""), encoding="utf-8")
    assert submit("run-1", "--schedule", config=unscheduled) == 2
    assert "schedule" in capsys.readouterr().err
    assert (server.runs, server.recurring) == ([], [])


def config_scheduled(tmp_path: Path, schedule: str) -> Path:
    config = tmp_path / "scheduled.yaml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    assert 'schedule: "0 3 * * *"' in text
    config.write_text(text.replace('schedule: "0 3 * * *"', f'schedule: "{schedule}"'))
    return config


def test_a_preset_schedule_becomes_the_recurring_runs_cron(
    server: FakeKfpServer, tmp_path: Path
) -> None:
    assert submit("run-1", "--schedule", config=config_scheduled(tmp_path, "@daily")) == 0
    [recurring] = server.recurring
    assert recurring.request["cron_expression"] == deploy.kfp_cron("@daily")
    assert [r["job_name"] for r in server.runs] == ["run-1"]


# "0 3 L * *" passes the config's validation (croniter) but not KFP's cron parser.
@pytest.mark.parametrize("schedule", ["0 3 L * *", "@fortnightly"])
def test_a_schedule_kfp_cannot_take_exits_2_before_anything_is_submitted(
    server: FakeKfpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], schedule: str
) -> None:
    config = config_scheduled(tmp_path, schedule)
    assert submit("run-1", "--schedule", config=config) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid config:") and "schedule" in err
    assert "Traceback" not in err
    assert (server.uploaded, server.runs, server.recurring) == ([], [], [])


# --- the step image ---------------------------------------------------------------------------

ECR_IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/orchbench/shared-ml:0.1.0-kubeflow"


def uploaded_images(text: str) -> set[str]:
    return {c["image"] for c in ir_containers(list(yaml.safe_load_all(text)))}


def test_without_an_image_the_committed_ir_is_uploaded_as_it_is(
    server: FakeKfpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(deploy.IMAGE_ENV, raising=False)
    assert submit("run-1") == 0
    assert server.uploaded[-1] == deploy.IR_PATH.read_text(encoding="utf-8")


@pytest.mark.parametrize("given_by", ["option", "environment"])
def test_every_step_of_the_uploaded_ir_runs_the_image_given(
    server: FakeKfpServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    given_by: str,
) -> None:
    committed = deploy.IR_PATH.read_text(encoding="utf-8")
    monkeypatch.setenv(deploy.IMAGE_ENV, ECR_IMAGE if given_by == "environment" else "x/y:z")
    extra = ["--image", ECR_IMAGE] if given_by == "option" else []
    assert submit("run-1", *extra) == 0
    assert uploaded_images(server.uploaded[-1]) == {ECR_IMAGE}
    assert uploaded_images(committed) != {ECR_IMAGE}
    assert deploy.IR_PATH.read_text(encoding="utf-8") == committed  # a copy was rewritten
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["images"] == [ECR_IMAGE]


def test_a_new_image_is_a_new_pipeline_version(server: FakeKfpServer) -> None:
    assert submit("run-1", "--image", ECR_IMAGE) == 0
    assert submit("run-2", "--image", ECR_IMAGE.replace("0.1.0", "0.2.0")) == 0
    assert submit("run-3", "--image", ECR_IMAGE) == 0
    versions = {r["version_id"] for r in server.runs}
    assert len(versions) == 2 and server.runs[0]["version_id"] == server.runs[2]["version_id"]


@pytest.mark.parametrize("image", ["", "orchbench/shared-ml", "repo:tag with space"])
def test_an_unpinned_or_malformed_image_is_refused_before_any_call(
    server: FakeKfpServer, capsys: pytest.CaptureFixture[str], image: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        submit("run-1", "--image", image)
    assert exit_info.value.code == 2
    assert "--image" in capsys.readouterr().err
    assert (server.uploaded, server.runs) == ([], [])


# --- the adapter's cluster path -------------------------------------------------------------


class FakeSubmission:
    """``python -m pipelines.kubeflow.deploy`` and the cluster behind it: the parameter it
    would send is built by deploy's own code from the file it is given, and the "pods" see
    nothing else: they validate it as a step does and write a step record where it says."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.parameters: list[dict[str, Any]] = []

    def __call__(self, args: list[str], extra_env: Any, keep_log: bool) -> dict[str, Any]:
        self.commands.append(args)
        option = dict(zip(args[2::2], args[3::2], strict=False))
        config_json = deploy.cluster_config_json(option["--config"], int(option["--seed"]))
        self.parameters.append({"config_json": config_json, "run_id": option["--run-id"]})
        config = config_from_json(config_json)
        write_select_record(config.storage.runs_root, option["--run-id"], 0.95, "cafe01", "hgb")
        return {"status": "success", "kfp_run_id": "kfp-1", "log": None}


@pytest.fixture
def cluster_adapter(
    monkeypatch: pytest.MonkeyPatch,
    s3_endpoint: str,  # noqa: F811
) -> tuple[KubeflowAdapter, FakeSubmission, str]:
    bucket = use_endpoint(monkeypatch, s3_endpoint, "orchbench-kfp-cluster-test")
    monkeypatch.setenv("ORCHBENCH_ARTIFACT_ROOT", bucket)
    adapter = KubeflowAdapter(target="cluster", url="http://kfp.cluster.test:8888")
    submission = FakeSubmission()
    monkeypatch.setattr(adapter, "_kubeflow_python", submission)
    return adapter, submission, bucket


def test_a_cluster_run_sends_the_config_by_value_and_reads_the_record_from_the_store(
    cluster_adapter: tuple[KubeflowAdapter, FakeSubmission, str],
) -> None:
    adapter, submission, bucket = cluster_adapter
    record = adapter.run_pipeline(DEFAULT_CONFIG, seed=5)

    [command] = submission.commands
    assert command[:2] == ["-m", "pipelines.kubeflow.deploy"] and "--schedule" not in command
    [sent] = submission.parameters
    for local in {str(REPO_ROOT), str(Path.cwd()), str(Path.home())}:
        assert local not in sent["config_json"], f"config_json names {local}, a path here"
    runs_root = json.loads(sent["config_json"])["storage"]["runs_root"]
    assert runs_root.startswith(f"{bucket}/")
    assert [s.key for s in record.steps] == ["select"] and record.prediction_hash == "cafe01"
    assert read_run_record(runs_root, record.run_id).prediction_hash == "cafe01"


def test_a_cluster_run_passes_the_step_image_on(
    cluster_adapter: tuple[KubeflowAdapter, FakeSubmission, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter, submission, _ = cluster_adapter
    assert cluster.IMAGE_ENV == deploy.IMAGE_ENV
    monkeypatch.delenv(deploy.IMAGE_ENV, raising=False)
    adapter.run_pipeline(DEFAULT_CONFIG, seed=5)
    monkeypatch.setenv(deploy.IMAGE_ENV, ECR_IMAGE)
    adapter.run_pipeline(DEFAULT_CONFIG, seed=5)
    unset, given = submission.commands
    assert "--image" not in unset
    assert given[given.index("--image") + 1] == ECR_IMAGE


def test_a_cluster_resume_is_resubmitted_to_the_cluster(
    cluster_adapter: tuple[KubeflowAdapter, FakeSubmission, str],
) -> None:
    adapter, submission, _ = cluster_adapter
    failed = adapter.run_pipeline(DEFAULT_CONFIG, seed=5, run_id="kfp-resume-1")
    adapter.resume_pipeline(failed, DEFAULT_CONFIG)
    assert [c[1] for c in submission.commands] == ["pipelines.kubeflow.deploy"] * 2
    assert [p["run_id"] for p in submission.parameters] == ["kfp-resume-1"] * 2


def test_a_cluster_workload_is_refused_not_run_locally(
    cluster_adapter: tuple[KubeflowAdapter, FakeSubmission, str],
) -> None:
    adapter, submission, _ = cluster_adapter
    with pytest.raises(CapabilityMissing, match="not run locally"):
        adapter.run_workload("chain", 3)
    assert submission.commands == []


def test_a_cluster_run_needs_the_object_store(
    cluster_adapter: tuple[KubeflowAdapter, FakeSubmission, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter, submission, _ = cluster_adapter
    monkeypatch.delenv("ORCHBENCH_ARTIFACT_ROOT")
    with pytest.raises(ConfigError, match="ORCHBENCH_ARTIFACT_ROOT"):
        adapter.run_pipeline(DEFAULT_CONFIG)
    assert submission.commands == []
