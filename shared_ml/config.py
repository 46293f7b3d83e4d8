"""Typed pipeline configuration, loaded from YAML or JSON.

A bad config fails here, before any work starts, with the dotted path of the offending
key and what was expected (``ConfigError``). Relative storage paths are resolved against
``$ORCHBENCH_HOME`` (default: the current directory) so that every process of every tool
agrees on where artifacts live.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared_ml.errors import ConfigError

BUNDLED_DATASETS = ("breast_cancer", "iris", "wine", "digits")
ESTIMATORS = ("logistic_regression", "random_forest", "gradient_boosting")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BundledSource(_Strict):
    kind: Literal["bundled"] = "bundled"
    name: Literal["breast_cancer", "iris", "wine", "digits"] = "breast_cancer"


class SyntheticSource(_Strict):
    kind: Literal["synthetic"] = "synthetic"
    rows: int = Field(10_000, ge=20, le=10_000_000)
    numeric_features: int = Field(20, ge=2, le=1_000)
    categorical_features: int = Field(2, ge=0, le=100)
    categories_per_feature: int = Field(4, ge=2, le=100)
    classes: int = Field(2, ge=2, le=20)
    informative_fraction: float = Field(0.5, gt=0, le=1)
    class_separation: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _enough_informative(self) -> SyntheticSource:
        informative = max(2, int(self.numeric_features * self.informative_fraction))
        if 2**informative < self.classes:
            raise ValueError(
                f"{self.classes} classes need at least {self.classes.bit_length()} informative "
                f"features; raise numeric_features or informative_fraction"
            )
        return self


class FileSource(_Strict):
    kind: Literal["file"] = "file"
    url: str = Field(..., min_length=1, description="CSV or Parquet at any fsspec URL")
    format: Literal["csv", "parquet", "auto"] = "auto"
    storage_options: dict[str, Any] = Field(default_factory=dict)

    def resolved_format(self) -> str:
        if self.format != "auto":
            return self.format
        lowered = self.url.lower().split("?")[0]
        if lowered.endswith((".parquet", ".pq")):
            return "parquet"
        if lowered.endswith((".csv", ".csv.gz", ".txt")):
            return "csv"
        raise ValueError(f"cannot infer the format of {self.url!r}; set data.format")


DataSource = Annotated[BundledSource | SyntheticSource | FileSource, Field(discriminator="kind")]


class DataConfig(_Strict):
    source: DataSource = Field(default_factory=BundledSource)
    target: str = Field("target", min_length=1, description="label column")


class ValidationConfig(_Strict):
    min_rows: int = Field(50, ge=1)
    max_null_fraction: float = Field(0.0, ge=0, le=1)
    required_columns: tuple[str, ...] = ()
    allowed_labels: tuple[str | int, ...] | None = None
    min_classes: int = Field(2, ge=2)


class PreprocessConfig(_Strict):
    test_fraction: float = Field(0.25, gt=0, lt=1)
    numeric_columns: tuple[str, ...] | None = None
    categorical_columns: tuple[str, ...] | None = None
    scale_numeric: bool = True


class ModelConfig(_Strict):
    estimator: Literal["logistic_regression", "random_forest", "gradient_boosting"] = (
        "logistic_regression"
    )
    params: dict[str, Any] = Field(default_factory=dict)


class GateConfig(_Strict):
    """Quality gate: a model below any threshold is registered but never promoted."""

    min_accuracy: float = Field(0.0, ge=0, le=1)
    min_f1: float = Field(0.0, ge=0, le=1)
    min_roc_auc: float = Field(0.0, ge=0, le=1)
    primary_metric: Literal["accuracy", "f1", "roc_auc"] = "f1"


class StorageConfig(_Strict):
    artifact_root: str = "var/artifacts"
    registry_root: str = "var/registry"
    runs_root: str = "var/runs"


class FaultSpec(_Strict):
    """Faults injected into one step, for the recovery tests and benchmarks."""

    transient_attempts: int = Field(0, ge=0, description="fail the first N attempts")
    non_retryable: bool = False
    delay_s: float = Field(0.0, ge=0, le=3600)
    kill_attempts: int = Field(0, ge=0, description="SIGKILL own process on the first N attempts")
    kill_after_s: float = Field(0.5, ge=0, le=3600)


class PipelineConfig(_Strict):
    name: str = Field("orchbench-ml", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    seed: int = Field(42, ge=0, le=2**32 - 1)
    data: DataConfig = Field(default_factory=DataConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    schedule: str | None = Field(None, description="cron expression for scheduled runs")
    faults: dict[str, FaultSpec] = Field(default_factory=dict)

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
        if schedule is not None and len(schedule.split()) != 5:
            raise ValueError("expected a 5-field cron expression such as '0 3 * * *'")
        return schedule

    @model_validator(mode="after")
    def _estimator_params(self) -> PipelineConfig:
        from shared_ml.steps.train import check_estimator_params

        check_estimator_params(self.model.estimator, self.model.params)
        return self

    def ml_fingerprint(self) -> str:
        """Hash of everything that decides the model; storage and faults are excluded."""
        payload = self.model_dump(mode="json", exclude={"storage", "faults", "schedule"})
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def with_overrides(self, **changes: Any) -> PipelineConfig:
        """A validated copy with top-level fields replaced (e.g. ``seed``)."""
        data = self.model_dump(mode="python")
        data.update({k: v for k, v in changes.items() if v is not None})
        return validate_config(data, "overrides")


def orchbench_home() -> Path:
    return Path(os.environ.get("ORCHBENCH_HOME") or os.getcwd()).resolve()


def _resolve_storage(storage: StorageConfig) -> StorageConfig:
    home = orchbench_home()

    def resolve(value: str) -> str:
        if "://" in value or os.path.isabs(value):
            return value
        return str(home / value)

    return StorageConfig(
        artifact_root=resolve(storage.artifact_root),
        registry_root=resolve(storage.registry_root),
        runs_root=resolve(storage.runs_root),
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


def validate_config(data: Any, source: str = "<config>") -> PipelineConfig:
    """Validate a mapping; raise ``ConfigError`` naming the key path on failure."""
    if not isinstance(data, dict):
        raise ConfigError(source, f"expected a mapping at the top level, got {type(data).__name__}")
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as err:
        raise _format_validation_error(err, source) from None
    except ConfigError as err:
        raise ConfigError(f"{source}: {err.location}", err.problem) from None
    updates: dict[str, Any] = {"storage": _resolve_storage(config.storage)}
    source = config.data.source
    if isinstance(source, FileSource) and "://" not in source.url and not os.path.isabs(source.url):
        resolved = source.model_copy(update={"url": str(orchbench_home() / source.url)})
        updates["data"] = config.data.model_copy(update={"source": resolved})
    return config.model_copy(update=updates)


def load_config(path: str | os.PathLike[str], **overrides: Any) -> PipelineConfig:
    """Load a YAML or JSON config file. ``overrides`` replace top-level keys (e.g. seed)."""
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
    return validate_config(data, str(path))


def config_from_json(payload: str) -> PipelineConfig:
    """Rebuild a config that was shipped to a task as JSON (already resolved)."""
    try:
        data = json.loads(payload)
    except json.JSONDecodeError as err:
        raise ConfigError("<config json>", f"not valid JSON: {err}") from None
    return validate_config(data, "<config json>")
