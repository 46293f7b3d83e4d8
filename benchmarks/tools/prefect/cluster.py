"""``--target cluster`` for Prefect: runs only through the cluster's Kubernetes worker.

A flow run started here is a flow run of a deployment on the cluster's server, picked up
by the worker infra deployed, which runs it as a Job (``pipelines/prefect/manifest.py``).
Nothing of it runs on this machine, and nothing of this machine reaches it:

- both deployments (``orchbench-ml``, ``orchbench-workload``) are registered on the
  cluster's server when either is missing, or sits on a pool that is not a Kubernetes pool
  (``python -m pipelines.prefect.deploy --kubernetes`` in the prefect environment, against
  the cluster's API): idempotent, so ``orchbench prefect deploy --url`` does the same;
- the config travels by value in the flow run's parameters, its storage on the cluster's
  object store, and the record is read back from there (every tool's cluster path,
  ``benchmarks.tools.cluster``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.environments import REPO_ROOT, tool_bin, tool_env
from benchmarks.tools.cluster import cluster_config, collect_from_store, store_and_read_back
from benchmarks.tools.prefect.client import PrefectApiError, PrefectClient
from benchmarks.tools.prefect.config_files import load_resolved_config, raw_config
from benchmarks.tools.prefect.paths import (
    DEPLOYMENT_NAME,
    FLOW_NAME,
    WORKLOAD_DEPLOYMENT_NAME,
    WORKLOAD_FLOW_NAME,
    PrefectRunError,
)
from shared_ml.config import PipelineConfig
from shared_ml.records import RunRecord, collect_run_record, write_run_record

DEPLOYMENTS = ((FLOW_NAME, DEPLOYMENT_NAME), (WORKLOAD_FLOW_NAME, WORKLOAD_DEPLOYMENT_NAME))
# The deployment's default parameters (for schedules and events); every run of ours
# passes its own config.
DEFAULT_DEPLOY_CONFIG = REPO_ROOT / "configs" / "default.yaml"
REGISTER_TIMEOUT_S = 300.0
Runner = Callable[..., subprocess.CompletedProcess]


def register_on_cluster(
    api_url: str, config_path: Path = DEFAULT_DEPLOY_CONFIG, run: Runner = subprocess.run
) -> dict[str, Any]:
    """Register (or update) both deployments on the cluster's Kubernetes work pool; the
    deploy command's JSON summary."""
    command = [str(tool_bin("prefect", "python")), "-m", "pipelines.prefect.deploy"]
    command += ["--kubernetes", "--config", str(config_path)]
    try:
        done = run(
            command,
            env=tool_env({"PREFECT_API_URL": api_url}),
            cwd=str(REPO_ROOT),
            capture_output=True,
            text=True,
            timeout=REGISTER_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PrefectRunError(
            f"registering the deployments on {api_url} took over {REGISTER_TIMEOUT_S:.0f} s"
        ) from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise PrefectRunError(
            f"registering the deployments on {api_url} failed (exit {done.returncode}): "
            f"{(done.stderr.strip() or done.stdout.strip())[-2000:]}"
        )
    return json.loads(lines[-1])


def _on_kubernetes_pool(client: PrefectClient, flow: str, name: str) -> str | None:
    """The deployment's id if it exists on a Kubernetes work pool, else None."""
    try:
        deployment = client.read_deployment(flow, name)
    except PrefectApiError as err:
        if err.status == 404:
            return None
        raise
    pool = deployment.get("work_pool_name")
    if not pool or client.read_work_pool(pool).get("type") != "kubernetes":
        return None
    return deployment["id"]


def cluster_deployment_ids(
    client: PrefectClient, config_path: Path = DEFAULT_DEPLOY_CONFIG, run: Runner = subprocess.run
) -> dict[tuple[str, str], str]:
    """Both deployments' ids on the cluster's server, registered first if either is
    missing or not on a Kubernetes pool (a process pool's worker would run the flow on
    whatever machine it runs on, not in the cluster)."""
    found = {key: _on_kubernetes_pool(client, *key) for key in DEPLOYMENTS}
    if all(found.values()):
        return found  # type: ignore[return-value]
    register_on_cluster(client.api_url, config_path, run)
    found = {key: _on_kubernetes_pool(client, *key) for key in DEPLOYMENTS}
    missing = [f"{flow}/{name}" for (flow, name), found_id in found.items() if not found_id]
    if missing:
        raise PrefectRunError(
            f"{', '.join(missing)}: still not on a Kubernetes work pool of {client.api_url} "
            "after `python -m pipelines.prefect.deploy --kubernetes`"
        )
    return found  # type: ignore[return-value]


class ClusterPath:
    """The adapter's config, deployments and run records by target, as a part of the
    adapter. Uses its ``target``."""

    _cluster_deployments: dict[tuple[str, str], str] | None = None

    def pipeline_config(self, config_path: Path | str, seed: int | None = None) -> PipelineConfig:
        """The run's config: on a cluster as the pods get it (storage on the object store, no
        path of this machine), else resolved against the tool processes' home."""
        if self.target == "cluster":
            return cluster_config(Path(config_path), seed)
        return load_resolved_config(config_path, seed)

    def _flow_config(self, config_path: Path | str, seed: int | None) -> dict[str, Any]:
        """The flow run's ``config`` parameter: by value; on a cluster fully resolved."""
        if self.target == "cluster":
            config = self.pipeline_config(config_path, seed)
            return config.model_dump(mode="json", exclude={"partition"})
        return raw_config(config_path, seed)

    def _deployment_id(
        self, client: PrefectClient, flow: str = FLOW_NAME, name: str = DEPLOYMENT_NAME
    ) -> str:
        """On a cluster registered on its server on first use (this adapter's), then
        cached; locally it must be registered already (the local services do it)."""
        if self.target == "cluster":
            if self._cluster_deployments is None:
                self._cluster_deployments = cluster_deployment_ids(client)
            return self._cluster_deployments[(flow, name)]
        try:
            return client.read_deployment(flow, name)["id"]
        except PrefectApiError as err:
            if err.status != 404:
                raise
            raise PrefectRunError(
                f"deployment {flow}/{name} is not registered on {client.api_url}: "
                "register it with `python -m pipelines.prefect.deploy` (in .venvs/prefect, "
                "PREFECT_API_URL set), or restart the local services "
                "(`orchbench prefect down`, then `orchbench prefect up`)"
            ) from None

    def _collect_record(self, runs_root: str, run_id: str, **record: Any) -> RunRecord:
        """The run's record from its step records; on a cluster they are read from the
        object store, and failing to read them is a ``RunRecordError``."""
        collect = collect_from_store if self.target == "cluster" else collect_run_record
        return collect(runs_root=runs_root, run_id=run_id, **record)

    def _keep_record(self, runs_root: str, record: RunRecord) -> RunRecord:
        """Write the record; on a cluster return it as read back from the object store (a
        success without step records there is a ``RunRecordError``, not an empty run)."""
        if self.target == "cluster":
            return store_and_read_back(runs_root, record)
        write_run_record(runs_root, record)
        return record
