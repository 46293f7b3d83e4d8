"""Checks that need the data but not the work: run before any tool is started.

A missing data file or a target column absent from the data is a configuration error
(exit code 2 at the CLI), found in a fraction of a second rather than mid-pipeline.
"""

from __future__ import annotations

from shared_ml.config import PipelineConfig
from shared_ml.errors import ConfigError
from shared_ml.sources import FileSource
from shared_ml.steps.ingest import read_file


def file_columns(source: FileSource, config: PipelineConfig) -> list[str]:
    return [str(c) for c in read_file(source, nrows=0, logical_date=config.logical_date).columns]


def preflight(config: PipelineConfig) -> None:
    """Check the data of ``config``'s partition (a templated URL without a partition is
    checked for today's, as a manual run would read)."""
    source = config.data.source
    if isinstance(source, FileSource):
        if source.partitioned and config.partition is None:
            config = config.for_partition(None)
        columns = file_columns(source, config)
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
