"""The data sources a pipeline config can name: a bundled scikit-learn dataset, a seeded
synthetic sample, or a CSV/Parquet file at any fsspec URL (optionally one per date), and
the ``data`` section that holds one. Split from ``shared_ml.config``, which imports them.
"""

from __future__ import annotations

import string
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared_ml.errors import ConfigError


class StrictModel(BaseModel):
    """Every config model: unknown keys are errors, and a loaded config never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BundledSource(StrictModel):
    kind: Literal["bundled"] = "bundled"
    name: Literal["breast_cancer", "iris", "wine", "digits"] = "breast_cancer"


class SyntheticSource(StrictModel):
    kind: Literal["synthetic"] = "synthetic"
    rows: int = Field(10_000, ge=20, le=10_000_000)
    numeric_features: int = Field(20, ge=2, le=1_000)
    categorical_features: int = Field(2, ge=0, le=100)
    categories_per_feature: int = Field(4, ge=2, le=100)
    classes: int = Field(2, ge=2, le=20)
    informative_fraction: float = Field(0.5, gt=0, le=1)
    class_separation: float = Field(1.0, gt=0)
    # None: the sample ignores the run's date. A number: each logical date draws its own
    # sample, and the features' means move by `drift` per day after `drift_origin`.
    drift: float | None = Field(None, ge=0, le=10)
    drift_origin: date = date(2026, 1, 1)

    @model_validator(mode="after")
    def _enough_informative(self) -> SyntheticSource:
        informative = max(2, int(self.numeric_features * self.informative_fraction))
        if 2**informative < self.classes:
            raise ValueError(
                f"{self.classes} classes need at least {self.classes.bit_length()} informative "
                f"features; raise numeric_features or informative_fraction"
            )
        return self


URL_PLACEHOLDERS = ("ds", "ds_nodash")


class FileSource(StrictModel):
    kind: Literal["file"] = "file"
    url: str = Field(
        ...,
        min_length=1,
        description="CSV or Parquet at any fsspec URL; {ds} or {ds_nodash} pick the run's partition",
    )
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

    @field_validator("url")
    @classmethod
    def _known_placeholders(cls, url: str) -> str:
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(url) if name is not None]
        except ValueError as err:
            raise ValueError(f"malformed placeholder: {err}") from None
        unknown = sorted(set(fields) - set(URL_PLACEHOLDERS))
        if unknown:
            raise ValueError(f"unknown placeholder(s) {unknown}; expected {list(URL_PLACEHOLDERS)}")
        return url

    @property
    def partitioned(self) -> bool:
        return any(f"{{{name}}}" in self.url for name in URL_PLACEHOLDERS)

    def url_for(self, logical_date: date | None) -> str:
        """The URL of one date's partition (the URL itself when it has no placeholder)."""
        if not self.partitioned:
            return self.url
        if logical_date is None:
            raise ConfigError("data.source.url", "a templated URL needs the run's logical date")
        return self.url.format(ds=logical_date.isoformat(), ds_nodash=f"{logical_date:%Y%m%d}")


DataSource = Annotated[BundledSource | SyntheticSource | FileSource, Field(discriminator="kind")]


class DataConfig(StrictModel):
    source: DataSource = Field(default_factory=BundledSource)
    target: str = Field("target", min_length=1, description="label column")
