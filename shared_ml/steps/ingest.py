"""Load the configured data source into a dataset artifact (an Arrow IPC file)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shared_ml.artifacts import ArtifactStore
from shared_ml.config import BundledSource, FileSource, PipelineConfig, SyntheticSource
from shared_ml.errors import ConfigError
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


def make_synthetic(source: SyntheticSource, target: str, seed: int) -> pd.DataFrame:
    """A classification table whose size is a parameter; categorical columns are binned
    from extra informative-or-noise features, so they carry signal like real ones."""
    from sklearn.datasets import make_classification

    n_features = source.numeric_features + source.categorical_features
    informative = max(2, int(n_features * source.informative_fraction))
    x, y = make_classification(
        n_samples=source.rows,
        n_features=n_features,
        n_informative=informative,
        n_redundant=0,
        n_classes=source.classes,
        class_sep=source.class_separation,
        random_state=seed,
    )
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


def read_file(source: FileSource, nrows: int | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file at any fsspec URL; ``nrows=0`` reads only the header."""
    import fsspec
    import pyarrow.parquet as pq

    try:
        fmt = source.resolved_format()
    except ValueError as err:
        raise ConfigError("data.source.format", str(err)) from None
    try:
        with fsspec.open(source.url, "rb", **source.storage_options) as fh:
            if fmt == "parquet":
                if nrows == 0:
                    return pq.ParquetFile(fh).schema_arrow.empty_table().to_pandas()
                return pd.read_parquet(fh)
            compression = "gzip" if source.url.endswith(".gz") else None
            return pd.read_csv(fh, nrows=nrows, compression=compression)
    except FileNotFoundError:
        raise ConfigError("data.source.url", f"no file at {source.url!r}") from None
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise ConfigError(
            "data.source.url", f"cannot read {source.url!r} as {fmt}: {err}"
        ) from None


def load_source(config: PipelineConfig) -> pd.DataFrame:
    source = config.data.source
    if isinstance(source, BundledSource):
        return load_bundled(source, config.data.target)
    if isinstance(source, SyntheticSource):
        return make_synthetic(source, config.data.target, config.seed)
    return read_file(source)


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
        },
    )
