"""Load the configured data source into a dataset artifact (an Arrow IPC file)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from shared_ml.artifacts import ArtifactStore
from shared_ml.config import PipelineConfig
from shared_ml.errors import ConfigError
from shared_ml.sources import BundledSource, FileSource, SyntheticSource
from shared_ml.steps import StepOutput

# scikit-learn's bundled loaders, by config name (imported when used: the CLI's preflight
# imports this module and must stay quick).
_LOADERS = {
    "breast_cancer": "load_breast_cancer",
    "iris": "load_iris",
    "wine": "load_wine",
    "digits": "load_digits",
}


def load_bundled(source: BundledSource, target: str) -> pd.DataFrame:
    from sklearn import datasets

    loader = getattr(datasets, _LOADERS[source.name])
    bunch = loader(as_frame=True)  # ships with scikit-learn: no download
    frame = bunch.frame.rename(columns={"target": target})
    return frame.reset_index(drop=True)


def make_synthetic(
    source: SyntheticSource, target: str, seed: int, logical_date: date | None = None
) -> pd.DataFrame:
    """A classification table whose size is a parameter; categorical columns are binned
    from extra informative-or-noise features, so they carry signal like real ones.

    With ``source.drift`` set, each logical date draws its own sample (the seed is offset
    by the day number), and every feature's mean moves by ``drift`` per day after
    ``drift_origin`` along one fixed direction: later dates differ, as real data does.
    """
    from sklearn.datasets import make_classification

    day = 0
    if source.drift is not None:
        if logical_date is None:
            raise ConfigError("data.source.drift", "a drifting source needs the run's logical date")
        day = (logical_date - source.drift_origin).days
    n_features = source.numeric_features + source.categorical_features
    informative = max(2, int(n_features * source.informative_fraction))
    x, y = make_classification(
        n_samples=source.rows,
        n_features=n_features,
        n_informative=informative,
        n_redundant=0,
        n_classes=source.classes,
        class_sep=source.class_separation,
        random_state=(seed + day) % 2**32,
    )
    if source.drift:
        direction = np.random.default_rng(seed).standard_normal(n_features)
        x += source.drift * day * direction / np.linalg.norm(direction)
    columns: dict[str, np.ndarray] = {
        f"num_{i:03d}": x[:, i] for i in range(source.numeric_features)
    }
    labels = np.array([f"c{k}" for k in range(source.categories_per_feature)], dtype=object)
    quantiles = np.linspace(0, 1, source.categories_per_feature + 1)[1:-1]
    for j in range(source.categorical_features):
        values = x[:, source.numeric_features + j]
        codes = np.searchsorted(np.quantile(values, quantiles), values)
        columns[f"cat_{j:03d}"] = labels[codes]
    frame = pd.DataFrame(columns)
    frame[target] = y.astype(np.int64)
    return frame


def read_file(
    source: FileSource, nrows: int | None = None, logical_date: date | None = None
) -> pd.DataFrame:
    """Read a CSV or Parquet file at any fsspec URL; ``nrows=0`` reads only the header.
    A templated URL (``{ds}``) reads the partition of ``logical_date``."""
    import fsspec
    import pyarrow.parquet as pq

    try:
        fmt = source.resolved_format()
    except ValueError as err:
        raise ConfigError("data.source.format", str(err)) from None
    url = source.url_for(logical_date)
    try:
        with fsspec.open(url, "rb", **source.storage_options) as fh:
            if fmt == "parquet":
                if nrows == 0:
                    return pq.ParquetFile(fh).schema_arrow.empty_table().to_pandas()
                return pd.read_parquet(fh)
            compression = "gzip" if url.endswith(".gz") else None
            return pd.read_csv(fh, nrows=nrows, compression=compression)
    except FileNotFoundError:
        where = f" (the partition of {logical_date})" if source.partitioned else ""
        raise ConfigError("data.source.url", f"no file at {url!r}{where}") from None
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise ConfigError("data.source.url", f"cannot read {url!r} as {fmt}: {err}") from None


def load_source(config: PipelineConfig) -> pd.DataFrame:
    source = config.data.source
    if isinstance(source, BundledSource):
        return load_bundled(source, config.data.target)
    if isinstance(source, SyntheticSource):
        return make_synthetic(source, config.data.target, config.seed, config.logical_date)
    return read_file(source, logical_date=config.logical_date)


def ingest(config: PipelineConfig) -> StepOutput:
    frame = load_source(config)
    if config.data.target not in frame.columns:
        raise ConfigError(
            "data.target",
            f"column {config.data.target!r} is not in the data; columns are {list(frame.columns)[:20]}",
        )
    store = ArtifactStore(config.storage.artifact_root)
    uri = store.put_frame(frame)
    return StepOutput(
        outputs={"dataset": uri},
        metadata={
            "rows": len(frame),
            "columns": len(frame.columns),
            "source": config.data.source.kind,
            "logical_date": config.logical_date.isoformat() if config.logical_date else None,
        },
    )
