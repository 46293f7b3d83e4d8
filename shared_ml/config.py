"""Typed pipeline configuration, loaded from YAML or JSON.

A bad config fails here, before any work starts, with the dotted path of the offending
key and what was expected (``ConfigError``). Relative storage paths are resolved by
``shared_ml.storage`` (under ``$ORCHBENCH_ARTIFACT_ROOT`` if set, else ``$ORCHBENCH_HOME``)
so that every process of every tool agrees on where artifacts live.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from shared_ml.errors import ConfigError
from shared_ml.sources import DataConfig, FileSource, StrictModel
from shared_ml.storage import orchbench_home, resolve_root

BUNDLED_DATASETS = ("breast_cancer", "iris", "wine", "digits")
ESTIMATORS = ("logistic_regression", "random_forest", "gradient_boosting")


class ColumnRule(StrictModel):
    """The declared schema of one column (or of every column matching it, with ``regex``)."""

    dtype: Literal["int", "float", "str", "bool", "category"]
    nullable: bool = False
    allowed: tuple[str | int | float | bool, ...] | None = None
    min: float | None = None
    max: float | None = None
    regex: bool = False  # the key is a regular expression over column names

    @model_validator(mode="after")
    def _range_order(self) -> ColumnRule:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self


class ValidationConfig(StrictModel):
    columns: dict[str, ColumnRule] = Field(
        default_factory=dict, description="declared column schema, checked before training"
    )
    min_rows: int = Field(50, ge=1)
    max_null_fraction: float = Field(0.0, ge=0, le=1)
    required_columns: tuple[str, ...] = ()
    allowed_labels: tuple[str | int, ...] | None = None
    min_classes: int = Field(2, ge=2)


class PreprocessConfig(StrictModel):
    test_fraction: float = Field(0.25, gt=0, lt=1)
    numeric_columns: tuple[str, ...] | None = None
    categorical_columns: tuple[str, ...] | None = None
    scale_numeric: bool = True


Estimator = Literal["logistic_regression", "random_forest", "gradient_boosting"]


class CandidateConfig(StrictModel):
    """One model candidate: a branch of the pipeline (train, then evaluate)."""

    name: str = Field(..., pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    estimator: Estimator
    params: dict[str, Any] = Field(default_factory=dict)


# Small on purpose: `make demo` and the test suites train these on 2 cores.
DEFAULT_CANDIDATES = (
    CandidateConfig(name="logreg", estimator="logistic_regression", params={"max_iter": 1000}),
    CandidateConfig(
        name="forest", estimator="random_forest", params={"n_estimators": 50, "max_depth": 6}
    ),
    CandidateConfig(name="hgb", estimator="gradient_boosting", params={"max_iter": 50}),
)


class ModelConfig(StrictModel):
    """Either ``candidates`` (one branch each) or a single ``estimator`` with ``params``
    (one branch, named after the estimator); neither gives ``DEFAULT_CANDIDATES``."""

    estimator: Estimator | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    candidates: tuple[CandidateConfig, ...] | None = Field(None, min_length=1, max_length=16)

    @model_validator(mode="after")
    def _one_form(self) -> ModelConfig:
        if self.candidates is not None and (self.estimator is not None or self.params):
            raise ValueError("set either model.candidates or model.estimator/params, not both")
        if self.params and self.estimator is None:
            raise ValueError("model.params needs model.estimator")
        if self.candidates is not None:
            names = [c.name for c in self.candidates]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"duplicate candidate name(s) {duplicates}")
        return self

    def resolved_candidates(self) -> tuple[CandidateConfig, ...]:
        if self.candidates is not None:
            return self.candidates
        if self.estimator is not None:
            return (
                CandidateConfig(name=self.estimator, estimator=self.estimator, params=self.params),
            )
        return DEFAULT_CANDIDATES

    def candidate(self, name: str) -> CandidateConfig:
        for c in self.resolved_candidates():
            if c.name == name:
                return c
        names = [c.name for c in self.resolved_candidates()]
        raise ConfigError("model.candidates", f"no candidate {name!r}; candidates are {names}")


class GateConfig(StrictModel):
    """Quality gate: a model below any threshold is registered but never promoted."""

    min_accuracy: float = Field(0.0, ge=0, le=1)
    min_f1: float = Field(0.0, ge=0, le=1)
    min_roc_auc: float = Field(0.0, ge=0, le=1)
    primary_metric: Literal["accuracy", "f1", "roc_auc"] = "f1"


class StorageConfig(StrictModel):
    artifact_root: str = "var/artifacts"
    registry_root: str = "var/registry"
    runs_root: str = "var/runs"


class Partition(StrictModel):
    """The date a run stands for, and the data interval it covers.

    Set by whoever starts the run: the scheduled time, the backfill date, or today for a
    manual run. It decides which data ``ingest`` reads; it is not part of the ML
    fingerprint (the model's own digest already differs when the data does).
    """

    logical_date: date
    interval_start: datetime
    interval_end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Partition:
        if self.interval_end < self.interval_start:
            raise ValueError("interval_end is before interval_start")
        return self

    @classmethod
    def daily(cls, logical_date: date) -> Partition:
        start = datetime.combine(logical_date, time(0), tzinfo=UTC)
        return cls(
            logical_date=logical_date, interval_start=start, interval_end=start + timedelta(days=1)
        )


def parse_logical_date(value: str | date, where: str = "logical date") -> date:
    """``YYYY-MM-DD`` (or an ISO timestamp, whose date is taken) as a date."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    try:
        return (
            date.fromisoformat(value)
            if len(value) == 10
            else parse_logical_date(datetime.fromisoformat(value), where)
        )
    except (TypeError, ValueError):
        raise ConfigError(where, f"expected a date as YYYY-MM-DD, got {value!r}") from None


# Each preset as the 5-field cron it stands for (Vixie cron's meaning, which croniter, Airflow
# and Prefect also give it), for the tools that take only a cron expression (KFP).
SCHEDULE_PRESET_CRONS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
}
SCHEDULE_PRESETS = tuple(SCHEDULE_PRESET_CRONS)


class FaultSpec(StrictModel):
    """Faults injected into one step, for the recovery tests and benchmarks."""

    transient_attempts: int = Field(0, ge=0, description="fail the first N attempts")
    non_retryable: bool = False
    delay_s: float = Field(0.0, ge=0, le=3600)
    kill_attempts: int = Field(0, ge=0, description="SIGKILL own process on the first N attempts")
    kill_after_s: float = Field(0.5, ge=0, le=3600)
    barrier: int = Field(
        0, ge=0, le=64, description="wait until N attempts of this step (all branches) started"
    )
    barrier_timeout_s: float = Field(120.0, gt=0, le=3600)


class PipelineConfig(StrictModel):
    name: str = Field("orchbench-ml", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    seed: int = Field(42, ge=0, le=2**32 - 1)
    data: DataConfig = Field(default_factory=DataConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    schedule: str | None = Field(
        None, description="cron expression or preset (@hourly, @daily, ...) for scheduled runs"
    )
    faults: dict[str, FaultSpec] = Field(default_factory=dict)
    partition: Partition | None = Field(None, description="set per run, not in config files")

    @field_validator("faults")
    @classmethod
    def _known_steps(cls, faults: dict[str, FaultSpec]) -> dict[str, FaultSpec]:
        from shared_ml.spec import PIPELINE

        unknown = sorted(set(faults) - set(PIPELINE.step_names))
        if unknown:
            raise ValueError(f"unknown step(s) {unknown}; expected one of {PIPELINE.step_names}")
        return faults

    @field_validator("schedule")
    @classmethod
    def _cron_shape(cls, schedule: str | None) -> str | None:
        if schedule is None:
            return None
        schedule = schedule.strip()
        if schedule.startswith("@"):
            if schedule not in SCHEDULE_PRESETS:
                raise ValueError(f"unknown preset {schedule!r}; expected one of {SCHEDULE_PRESETS}")
            return schedule
        from croniter import croniter

        if len(schedule.split()) != 5 or not croniter.is_valid(schedule):
            raise ValueError(
                "expected a 5-field cron expression such as '0 3 * * *', or a preset "
                f"({', '.join(SCHEDULE_PRESETS)})"
            )
        return schedule

    @model_validator(mode="after")
    def _estimator_params(self) -> PipelineConfig:
        from shared_ml.steps.train import check_estimator_params

        explicit = self.model.candidates is not None
        for index, candidate in enumerate(self.model.resolved_candidates()):
            where = f"model.candidates.{index}.params" if explicit else "model.params"
            check_estimator_params(candidate.estimator, candidate.params, where)
        return self

    @property
    def candidate_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.model.resolved_candidates())

    def for_partition(self, partition: Partition | date | str | None) -> PipelineConfig:
        """A copy that runs for ``partition`` (a date means that day, 00:00 to 24:00 UTC)."""
        if partition is None:
            partition = datetime.now(UTC).date()  # a manual run stands for today
        if not isinstance(partition, Partition):
            partition = Partition.daily(parse_logical_date(partition))
        return self.model_copy(update={"partition": partition})

    @property
    def logical_date(self) -> date | None:
        return self.partition.logical_date if self.partition else None

    def ml_fingerprint(self) -> str:
        """Hash of everything that decides the model; storage, faults, the schedule and the
        partition are excluded (the data a partition brings shows in the model's digest)."""
        payload = self.model_dump(
            mode="json", exclude={"storage", "faults", "schedule", "partition"}
        )
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def with_overrides(self, **changes: Any) -> PipelineConfig:
        """A validated copy with top-level fields replaced (e.g. ``seed``)."""
        data = self.model_dump(mode="python")
        data.update({k: v for k, v in changes.items() if v is not None})
        return validate_config(data, "overrides")


def _resolve_storage(storage: StorageConfig, base: str | None = None) -> StorageConfig:
    return StorageConfig(
        artifact_root=resolve_root(storage.artifact_root, base),
        registry_root=resolve_root(storage.registry_root, base),
        runs_root=resolve_root(storage.runs_root, base),
    )


def _format_validation_error(err: ValidationError, source: str) -> ConfigError:
    problems = []
    for item in err.errors():
        # Drop pydantic's discriminator tags (e.g. "synthetic") from the key path.
        path = ".".join(str(p) for p in item["loc"] if p not in ("bundled", "synthetic", "file"))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif "input" in item and item["type"] != "missing" and not isinstance(item["input"], dict):
            message += f" (got {item['input']!r})"
        problems.append(f"{path or '<root>'}: {message}")
    return ConfigError(source, "; ".join(problems))


def validate_config(
    data: Any, source: str = "<config>", *, storage_base: str | None = None
) -> PipelineConfig:
    """Validate a mapping; raise ``ConfigError`` naming the key path on failure.

    Relative storage roots resolve under ``storage_base`` when given (e.g. the cluster's
    ``s3://bucket`` for a config shipped to pods), else as ``shared_ml.storage`` says."""
    if not isinstance(data, dict):
        raise ConfigError(source, f"expected a mapping at the top level, got {type(data).__name__}")
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as err:
        raise _format_validation_error(err, source) from None
    except ConfigError as err:
        raise ConfigError(f"{source}: {err.location}", err.problem) from None
    updates: dict[str, Any] = {"storage": _resolve_storage(config.storage, storage_base)}
    source = config.data.source
    if isinstance(source, FileSource) and "://" not in source.url and not os.path.isabs(source.url):
        resolved = source.model_copy(update={"url": str(orchbench_home() / source.url)})
        updates["data"] = config.data.model_copy(update={"source": resolved})
    return config.model_copy(update=updates)


def load_config(
    path: str | os.PathLike[str], *, storage_base: str | None = None, **overrides: Any
) -> PipelineConfig:
    """Load a YAML or JSON config file. ``overrides`` replace top-level keys (e.g. seed);
    ``storage_base`` as in ``validate_config``."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(str(path), "config file not found")
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ConfigError(
            str(path), f"not valid {'JSON' if file.suffix == '.json' else 'YAML'}: {err}"
        ) from None
    if data is None:
        data = {}
    if isinstance(data, dict):
        data.update({k: v for k, v in overrides.items() if v is not None})
    return validate_config(data, str(path), storage_base=storage_base)


def config_from_json(payload: str) -> PipelineConfig:
    """Rebuild a config that was shipped to a task as JSON (already resolved)."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as err:
        raise ConfigError("<config json>", f"not valid JSON: {err}") from None
    return validate_config(data, "<config json>")
