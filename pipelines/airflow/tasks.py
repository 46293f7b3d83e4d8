"""What the Airflow DAGs' tasks share: config resolution, run dates and ids, retries from the spec.

Kept free of DAG objects so the dag-processor does not parse it as a DAG file (it is
also listed in ``.airflowignore``).
"""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from shared_ml.config import (
    SCHEDULE_PRESETS,
    Partition,
    PipelineConfig,
    load_config,
    orchbench_home,
    validate_config,
)
from shared_ml.errors import ConfigError
from shared_ml.spec import PIPELINE

REPO_ROOT = Path(__file__).resolve().parents[2]
# The config whose `schedule` and input data define the DAG's triggers at parse time;
# a run can still use any other config file through the `config_path` param.
CONFIG_ENV = "ORCHBENCH_AIRFLOW_CONFIG"
DEFAULT_CONFIG = "configs/default.yaml"
OWNER = "orchbench"
TAGS = ["orchbench", "ml"]
ML_DAG_ID = PIPELINE.name  # "orchbench_ml"
INPUT_ASSET_NAME = "orchbench_input_data"


def resolve_config_path(path: str | os.PathLike[str]) -> Path:
    """Absolute paths as given; relative ones against $ORCHBENCH_HOME, the repo, then the
    working directory (``/opt/orchbench`` in the image, where the package is installed
    elsewhere)."""
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate
    for base in (orchbench_home(), REPO_ROOT, Path.cwd()):
        if (base / candidate).is_file():
            return base / candidate
    return REPO_ROOT / candidate


def parse_time_config() -> str:
    """The config file the DAG is parsed with: its schedule and input data are the DAG's
    triggers, and it is the run's config unless a run's ``config_path`` param says otherwise."""
    return os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG


def parse_time_triggers() -> tuple[str | None, str]:
    """The schedule (cron or preset) and the input-data asset URI of the parse-time config.

    Read straight from the YAML rather than through ``load_config``: full validation
    imports scikit-learn, and every task process re-parses this DAG file before it runs
    (under a 30 s import timeout). Each task validates the whole config before any work;
    here only the schedule's shape is checked (Airflow's timetable checks the cron itself).
    """
    path = resolve_config_path(parse_time_config())
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(str(path), f"cannot read the DAG's config: {err}") from None
    schedule = raw.get("schedule")
    if schedule is not None:
        schedule = str(schedule).strip()
        preset = schedule.startswith("@")
        if (preset and schedule not in SCHEDULE_PRESETS) or (
            not preset and len(schedule.split()) != 5
        ):
            raise ConfigError(
                f"{path} -> schedule",
                f"expected a 5-field cron or one of {', '.join(SCHEDULE_PRESETS)}, got {schedule!r}",
            )
    source = (raw.get("data") or {}).get("source") or {}
    return schedule, input_asset_uri(source)


def run_partition(
    logical_date: datetime | None,
    interval_start: datetime | None,
    interval_end: datetime | None,
    run_after: datetime | None,
) -> Partition:
    """The partition a DAG run stands for, from Airflow's own dates of that run.

    A run with a logical date (scheduled, backfill, or triggered with one) covers its data
    interval and reads its logical date's partition. A manual run without one (allowed in
    Airflow 3, and what a plain trigger makes) stands for the day it runs: ``run_after``.
    The adapter applies the same rule to the REST API's view of the run (a test keeps the
    two in step).
    """
    if logical_date is None:
        return Partition.daily(_utc_date(run_after or datetime.now(UTC)))
    if interval_start is None or interval_end is None:
        return Partition.daily(_utc_date(logical_date))
    return Partition(
        logical_date=_utc_date(logical_date),
        interval_start=interval_start,
        interval_end=interval_end,
    )


def _utc_date(moment: datetime) -> date:
    return moment.astimezone(UTC).date() if moment.tzinfo else moment.date()


def run_config(params: dict[str, Any]) -> PipelineConfig:
    """The config of one DAG run: the ``config_path`` and ``seed`` params (a manual run or
    a backfill may override both), plus faults from the run conf (``{"faults": {...}}``).

    A run may instead carry its whole config by value (the ``config`` param: what
    ``--target cluster`` sends, since no pod can read a path of the machine that started
    the run); ``config_path`` is then not read. Its relative storage roots resolve here, in
    the task's process (under ``$ORCHBENCH_ARTIFACT_ROOT`` in a cluster's pods)."""
    shipped = params.get("config")
    if shipped:
        config = validate_config(shipped, "dag_run.conf -> config")
        if params.get("seed") is not None:
            config = config.with_overrides(seed=params["seed"])
    else:
        path = resolve_config_path(params.get("config_path") or parse_time_config())
        config = load_config(path, seed=params.get("seed"))
    faults = params.get("faults") or {}
    if faults:
        if not isinstance(faults, dict):
            raise ConfigError("dag_run.conf -> faults", "expected a mapping of step -> FaultSpec")
        merged = {k: v.model_dump() for k, v in config.faults.items()} | faults
        config = config.with_overrides(faults=merged)
    return config


def records_run_id(dag_run_id: str) -> str:
    """A run id safe as a folder name. Ids that orchbench generates pass unchanged;
    Airflow's own (``scheduled__2025-01-01T03:00:00+00:00``) lose ``:`` and ``+``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", dag_run_id)


def retry_arguments(step: str) -> dict[str, Any]:
    """Airflow's retry settings for a step, from its RetryPolicy in the spec.

    Airflow waits ``retry_delay * backoff**(try-1)`` plus a deterministic jitter of up to
    the same amount, capped at ``max_retry_delay``.
    """
    policy = PIPELINE.step(step).retry
    return {
        "retries": policy.max_retries,
        "retry_delay": timedelta(seconds=policy.delay_s),
        "retry_exponential_backoff": policy.backoff if policy.backoff > 1 else 0,
        "max_retry_delay": timedelta(seconds=policy.max_delay_s),
    }


def input_asset_uri(source: dict[str, Any]) -> str:
    """The input data (``data.source`` of a config) as an asset URI: a file's own URL (the
    partitions' folder for a templated one), or an ``x-orchbench`` URI for generated data,
    which has no location of its own."""
    kind = source.get("kind", "bundled")
    if kind == "file":
        url = str(source.get("url", ""))
        if "{" in url:  # partitioned ({ds}): the asset is the folder of the partitions
            url = url[: url.index("{")].rsplit("/", 1)[0] + "/"
        return url if "://" in url else Path(url).resolve().as_uri()
    if kind == "bundled":
        return f"x-orchbench://datasets/bundled/{source.get('name', 'breast_cancer')}"
    return "x-orchbench://datasets/synthetic"
