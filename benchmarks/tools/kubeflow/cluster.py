"""``--target cluster`` for KFP: every run goes through ``kfp.Client`` to the cluster.

``python -m pipelines.kubeflow.deploy`` (in the kubeflow environment) uploads the IR and
creates the run; each step is a driver and an executor pod under Argo. Nothing of the run
happens on this machine, and nothing of this machine reaches it:

- the config travels by value as the ``config_json`` pipeline parameter, validated here
  with its storage on the cluster's object store (``$ORCHBENCH_ARTIFACT_ROOT``, the value
  infra gives the step pods through the Secret the IR maps) and no path of this machine;
- the run record is assembled from the step records the pods wrote there and read back
  from there; a run whose record cannot be read is an error, not a success without steps;
- a resume re-submits the run with the same run id, so KFP's cache on the cluster returns
  the steps that succeeded;
- the steps run ``$ORCHBENCH_KFP_IMAGE`` when it is set (deploy's ``--image``: the uploaded
  IR is a copy with that image in every executor), e.g. the ECR reference an EKS stack
  exports as ``images.kubeflow``; unset, the image the IR was compiled with.

The scaling workloads have no cluster path (their pipelines are compiled per shape and
size and never uploaded): ``run_workload`` says so rather than run them locally.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from benchmarks.tools.base import CapabilityMissing
from benchmarks.tools.cluster import cluster_config, collect_from_store, store_and_read_back
from shared_ml.records import RunRecord, read_step_log
from shared_ml.spec import PIPELINE

# The image every step runs, as a cluster can pull it (pipelines/kubeflow/deploy.py reads the
# same variable when run by hand; this module cannot import it).
IMAGE_ENV = "ORCHBENCH_KFP_IMAGE"


def cluster_step_log(config_path: Path, record: RunRecord, step: str, attempt: int) -> str:
    """A cluster step attempt's log, as its pod wrote it to the cluster's object store
    (``shared_ml.execution`` keeps each attempt's log beside its step record, in the runs
    root the shipped config names). The KFP API (v2beta1) serves no logs; the pod's whole
    log, the KFP driver's lines included, is in the KFP UI."""
    runs_root = cluster_config(Path(config_path), record.seed).storage.runs_root
    text = read_step_log(runs_root, record.run_id, step, attempt)
    if text is None:
        raise FileNotFoundError(
            f"no log for {step} attempt {attempt} of cluster run {record.run_id} under "
            f"{runs_root}. The KFP API (v2beta1) serves no pod logs: see the pod's in the "
            "KFP UI (Runs -> the run -> the step -> Logs), or `kubectl logs -n kubeflow "
            "<pod> -c main` (the pod is named in the step's Details tab)."
        )
    return text


class ClusterRuns:
    """The pipeline on the cluster, as a part of the adapter. Uses its ``url``, ``name``,
    ``webhook_url`` and ``_kubeflow_python``."""

    def _run_on_cluster(
        self, config_path: Path, seed: int | None, run_id: str, logical_date: date | None
    ) -> RunRecord:
        config = cluster_config(Path(config_path), seed).for_partition(logical_date)
        started_at = datetime.now(UTC)
        with tempfile.TemporaryDirectory(prefix="orchbench-kfp-config-") as folder:
            # The resolved config, read by the submitting process and sent as a parameter.
            shipped = Path(folder) / "config.json"
            shipped.write_text(
                json.dumps(config.model_dump(mode="json", exclude={"partition"})),
                encoding="utf-8",
            )
            command = ["-m", "pipelines.kubeflow.deploy", "--url", str(self.url)]
            command += ["--config", str(shipped), "--run-id", run_id]
            command += ["--seed", str(config.seed), "--webhook-url", self.webhook_url]
            command += ["--date", config.logical_date.isoformat()]
            image = os.environ.get(IMAGE_ENV)
            if image:
                command += ["--image", image]
            summary = self._kubeflow_python(command, None, keep_log=False)
        runs_root = config.storage.runs_root
        record = collect_from_store(
            runs_root,
            run_id,
            tool=self.name,
            pipeline=PIPELINE.name,
            config_fingerprint=config.ml_fingerprint(),
            seed=config.seed,
            status=summary["status"],
            started_at=started_at,
            ended_at=datetime.now(UTC),
            partition=config.partition,
            tool_details={"target": "cluster", "execution_model": "pod-per-step", **summary},
        )
        return store_and_read_back(runs_root, record)

    def _resume_on_cluster(self, failed: RunRecord, config_path: Path) -> RunRecord:
        """The same run id, seed and date again: KFP's cache on the cluster returns the steps
        that succeeded (their cache key includes the run id), the rest run as new pods."""
        resumed_at = datetime.now(UTC)
        record = self._run_on_cluster(config_path, failed.seed, failed.run_id, failed.logical_date)
        record.tool_details["resumed_at"] = resumed_at.isoformat()
        record.tool_details["re_executed"] = sorted(
            {s.key for s in record.steps if s.started_at >= resumed_at}
        )
        return record

    def _cluster_workload(self, shape: str, size: int) -> Any:
        raise CapabilityMissing(
            f"kubeflow --target cluster: the {shape} workload of {size} tasks has no cluster "
            "path (its pipeline is compiled per shape and size, never uploaded); it is not "
            "run locally instead, so a cluster figure never includes a kfp.local run"
        )
