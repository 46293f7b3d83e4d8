"""``--target cluster`` for Airflow: the run's config travels by value in the DAG run's
conf (``{"config": {...}}``), never as a path here. The rest of the cluster path (storage
on the cluster's object store, the record read back from there) is every tool's:
``benchmarks.tools.cluster``.
"""

from __future__ import annotations

from typing import Any

from shared_ml.config import PipelineConfig


def cluster_conf(config: PipelineConfig, faults: dict[str, Any] | None = None) -> dict[str, Any]:
    """The DAG run's conf: the whole config by value (the DAG's ``config`` param), plus
    faults as for a local run. The partition is the run's own (its logical date)."""
    conf: dict[str, Any] = {"config": config.model_dump(mode="json", exclude={"partition"})}
    if faults:
        conf["faults"] = faults
    return conf
