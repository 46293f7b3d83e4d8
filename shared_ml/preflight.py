"""Checks that need the data but not the work: run before any tool is started.

A missing data file or a target column absent from the data is a configuration error
(exit code 2 at the CLI), found in a fraction of a second rather than mid-pipeline.
"""

from __future__ import annotations

import fsspec
import pandas as pd
import pyarrow.parquet as pq

from shared_ml.config import FileSource, PipelineConfig
from shared_ml.errors import ConfigError


def file_columns(source: FileSource) -> list[str]:
    try:
        fmt = source.resolved_format()
    except ValueError as err:
        raise ConfigError("data.source.format", str(err)) from None
    try:
        with fsspec.open(source.url, "rb", **source.storage_options) as fh:
            if fmt == "parquet":
                return list(pq.ParquetFile(fh).schema_arrow.names)
            compression = "gzip" if source.url.endswith(".gz") else None
            return list(pd.read_csv(fh, nrows=0, compression=compression).columns)
    except FileNotFoundError:
        raise ConfigError("data.source.url", f"no file at {source.url!r}") from None
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise ConfigError(
            "data.source.url", f"cannot read {source.url!r} as {fmt}: {err}"
        ) from None


def preflight(config: PipelineConfig) -> None:
    source = config.data.source
    if isinstance(source, FileSource):
        columns = file_columns(source)
        if config.data.target not in columns:
            raise ConfigError(
                "data.target",
                f"column {config.data.target!r} is not in {source.url}; columns: {columns[:20]}",
            )
        for column in config.validation.required_columns:
            if column not in columns:
                raise ConfigError(
                    "validation.required_columns", f"column {column!r} is not in {source.url}"
                )
