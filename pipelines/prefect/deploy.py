"""Register the work pool and the deployments (the ML flow's and the scaling workload's)
on the Prefect server.

The server is the one at ``$PREFECT_API_URL``:

    python -m pipelines.prefect.deploy --config configs/default.yaml [--pool orchbench-process]
    python -m pipelines.prefect.deploy --kubernetes [--config ...]   # a cluster's server

``--kubernetes`` registers the deployments on the cluster's *Kubernetes* work pool
(``manifest.POOL_NAME``, the pool the worker deployed by infra polls): flow runs become Jobs
in the worker's namespace, running the shared_ml image. The pool is created from the
committed base job template only if it does not exist yet; an existing pool's template
is left alone (infra's worker chart owns it and syncs it at every worker start).

The deployment ``orchbench-ml/orchbench-ml``:

- runs on a *process* work pool (a ``prefect worker start --pool ... --type process``
  starts each flow run as a subprocess of the worker), or with ``--kubernetes`` on the
  cluster's Kubernetes pool (each flow run a Job);
- finds the flow by module path (``pipelines.prefect.pipeline.ml_pipeline``), so any
  environment where the project is installed can run it (the worker's venv, the
  ``orchbench/shared-ml`` image on Kubernetes) without pulling code;
- has the config's ``schedule`` (UTC), when it sets one: a cron expression or a preset
  (``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``), both taken as they are
  by Prefect's ``CronSchedule`` (its vendored croniter knows the presets);
- has an event trigger: every ``orchbench.data.updated`` event starts a run;
- sets ``PREFECT_LOGGING_EXTRA_LOGGERS=shared_ml`` in its flow runs' environment (a job
  variable), so the steps' log lines reach the task-run logs whoever started the worker;
- takes the config as its default ``config`` parameter (storage paths stay relative, so
  the flow run's ``$ORCHBENCH_ARTIFACT_ROOT``, else its ``$ORCHBENCH_HOME``, decides where
  artifacts go).

The deployment ``orchbench-workload/orchbench-workload`` runs the no-op scaling workload
(``pipelines.prefect.workloads``) on the same pool, so the benchmark's scaling figures go
through the worker like its pipeline runs. No schedule, no trigger: the benchmark starts
each run with its shape, size and run id as parameters.

Prints a JSON line ``{"deployment_id", "deployment", "workload_deployment_id",
"workload_deployment", "work_pool", "work_pool_type"}``. Idempotent: running it again updates the same
deployments.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from shared_ml.logs import LOGGER_NAME as SHARED_ML_LOGGER

DEFAULT_POOL = "orchbench-process"
DEPLOYMENT_NAME = "orchbench-ml"
WORKLOAD_DEPLOYMENT_NAME = "orchbench-workload"
DATA_UPDATED_EVENT = "orchbench.data.updated"
EXTRA_LOGGERS_ENV = "PREFECT_LOGGING_EXTRA_LOGGERS"


def raw_config(path: str) -> dict[str, Any]:
    """The config file as written (validated, but with storage paths left relative)."""
    from shared_ml.config import load_config

    load_config(path)  # fail early, naming the offending key
    text = Path(path).read_text(encoding="utf-8")
    return (json.loads(text) if path.endswith(".json") else yaml.safe_load(text)) or {}


POOL_TYPES = ("process", "kubernetes")


def pool_base_job_template(pool_type: str) -> dict[str, Any]:
    """The base job template a new pool of ``pool_type`` gets: Prefect's own for a process
    pool, the committed one (``k8s-base-job-template.json``) for a Kubernetes pool."""
    if pool_type == "process":
        from prefect.workers.process import ProcessWorker

        return ProcessWorker.get_default_base_job_template()
    if pool_type == "kubernetes":
        from pipelines.prefect.manifest import TEMPLATE_PATH

        return json.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))
    raise ValueError(f"work pool type {pool_type!r}: expected one of {', '.join(POOL_TYPES)}")


def ensure_pool(name: str, pool_type: str = "process") -> bool:
    """Create the work pool unless it exists; True when this call created it. An existing
    pool is never changed, but one of another type is refused: its worker would run the
    flow runs somewhere else than asked."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            existing = client.read_work_pool(name)
        except ObjectNotFound:
            existing = None
        if existing is not None:
            if existing.type != pool_type:
                raise ValueError(
                    f"work pool {name!r} exists with type {existing.type!r}, not {pool_type!r}"
                )
            return False
        with contextlib.suppress(ObjectAlreadyExists):  # created meanwhile: the same pool
            client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type=pool_type,
                    base_job_template=pool_base_job_template(pool_type),
                    description=f"orchbench: flow runs on a {pool_type} worker",
                )
            )
            return True
        return False


def config_schedules(config: dict[str, Any]) -> list[Any]:
    """The deployment schedules for a config's ``schedule`` (none when it has none)."""
    from prefect.schedules import Cron

    schedule = config.get("schedule")
    return [Cron(schedule.strip(), timezone="UTC")] if schedule else []


def deploy_pipeline(
    config_path: str,
    pool: str,
    name: str = DEPLOYMENT_NAME,
    *,
    schedules: list[Any] | None = None,
    event_trigger: bool = True,
    pool_type: str = "process",
) -> str:
    """Create or update the deployment; ``schedules`` (``prefect.schedules`` objects)
    replace the config's own when given; ``event_trigger=False`` leaves out the
    ``orchbench.data.updated`` trigger (one deployment per event is enough)."""
    from prefect.events import DeploymentEventTrigger
    from prefect.types.entrypoint import EntrypointType

    from pipelines.prefect.pipeline import ml_pipeline

    config = raw_config(config_path)
    deployment = ml_pipeline.to_deployment(
        name=name,
        entrypoint_type=EntrypointType.MODULE_PATH,
        schedules=schedules if schedules is not None else config_schedules(config),
        parameters={"config": config},
        triggers=[
            DeploymentEventTrigger(
                name="on-data-updated",
                expect={DATA_UPDATED_EVENT},
                match={"prefect.resource.id": "orchbench.*"},
            )
        ]
        if event_trigger
        else None,
        tags=["orchbench"],
        description=f"orchbench ML pipeline, config {config_path}",
        # Whoever started the worker, its flow-run processes ship shared_ml's step lines
        # to the task-run logs (Prefect sends only the loggers named here to the API).
        job_variables={"env": {EXTRA_LOGGERS_ENV: SHARED_ML_LOGGER}},
    )
    return _register(deployment, pool, pool_type)


def deploy_workload(
    pool: str, name: str = WORKLOAD_DEPLOYMENT_NAME, pool_type: str = "process"
) -> str:
    """Create or update the scaling workload's deployment (no schedule, no trigger)."""
    from prefect.types.entrypoint import EntrypointType

    from pipelines.prefect.workloads import workload

    deployment = workload.to_deployment(
        name=name,
        entrypoint_type=EntrypointType.MODULE_PATH,
        tags=["orchbench"],
        description="orchbench no-op scaling workload (chain or fan-out)",
    )
    return _register(deployment, pool, pool_type)


def _register(deployment: Any, pool: str, pool_type: str) -> str:
    from prefect import deploy

    from pipelines.prefect.tasks import save_results_block

    ensure_pool(pool, pool_type)
    save_results_block()  # the block the tasks name when their results are remote
    ids = deploy(
        deployment,
        work_pool_name=pool,
        build=False,
        push=False,
        print_next_steps_message=False,
        ignore_warnings=True,
    )
    return str(ids[0])


def main(argv: list[str] | None = None) -> int:
    from pipelines.prefect.manifest import POOL_NAME

    parser = argparse.ArgumentParser(prog="python -m pipelines.prefect.deploy")
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument(
        "--kubernetes",
        action="store_true",
        help=f"register on the cluster's Kubernetes work pool (default pool {POOL_NAME})",
    )
    parser.add_argument("--pool", help=f"default {DEFAULT_POOL} ({POOL_NAME} with --kubernetes)")
    parser.add_argument("--name", default=DEPLOYMENT_NAME)
    args = parser.parse_args(argv)
    if not os.environ.get("PREFECT_API_URL"):
        print("error: PREFECT_API_URL is not set", file=sys.stderr)
        return 2
    from shared_ml.config import ConfigError

    pool_type = "kubernetes" if args.kubernetes else "process"
    pool = args.pool or (POOL_NAME if args.kubernetes else DEFAULT_POOL)
    try:
        deployment_id = deploy_pipeline(args.config, pool, args.name, pool_type=pool_type)
    except ConfigError as err:
        print(f"error: invalid config: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # a pool of the wrong type
        print(f"error: {err}", file=sys.stderr)
        return 2
    workload_id = deploy_workload(pool, pool_type=pool_type)
    print(
        json.dumps(
            {
                "deployment_id": deployment_id,
                "deployment": f"orchbench-ml/{args.name}",
                "workload_deployment_id": workload_id,
                "workload_deployment": f"orchbench-workload/{WORKLOAD_DEPLOYMENT_NAME}",
                "work_pool": pool,
                "work_pool_type": pool_type,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
