"""``--target cluster``, for every tool: nothing of a run lives on this machine's disk.

A pod never sees the machine that started the run, so:

- the run's config travels by value (how, each tool's own cluster module says), validated
  here, never as a path here;
- its storage roots are the cluster's store: relative roots resolve under
  ``$ORCHBENCH_ARTIFACT_ROOT`` (``s3://<bucket>``, the value infra gives every pod; a
  ``file://`` URL names a filesystem every pod mounts at that path), and a root or a data
  file that is a plain path of this machine is refused before anything is sent;
- the run record is assembled from the step records the pods wrote there, stored beside
  them as ``run.json`` and read back through the port-forwarded S3 endpoint
  (``AWS_ENDPOINT_URL`` and the keys, read by s3fs). A record that cannot be read is an
  error (``RunRecordError``), never an empty success.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from shared_ml import storage
from shared_ml.config import PipelineConfig, load_config
from shared_ml.errors import ConfigError
from shared_ml.records import (
    RunRecord,
    RunRecordError,
    collect_run_record,
    read_run_record,
    run_location,
    write_run_record,
)
from shared_ml.sources import FileSource


def _is_url(location: str) -> bool:
    """A location every pod can name the same way (``s3://``, or ``file://`` for a
    filesystem they all mount), unlike a plain path of this machine."""
    return "://" in location


def cluster_storage_base() -> str:
    """The cluster's store, where relative storage roots resolve for pods and for this
    machine alike."""
    base = os.environ.get(storage.ARTIFACT_ROOT_ENV, "").strip()
    if not _is_url(base):
        raise ConfigError(
            f"${storage.ARTIFACT_ROOT_ENV}",
            f"--target cluster needs the cluster's object store (s3://<bucket>, as infra sets "
            f"it in every pod), with AWS_ENDPOINT_URL at its port-forward and the keys; got "
            f"{base!r}. The pods write the run's artifacts and records there and this "
            "machine reads them back from there",
        )
    return base


def cluster_config(config_path: Path, seed: int | None) -> PipelineConfig:
    """The config a cluster run ships: validated here, storage on the object store, and no
    path of this machine anywhere in it."""
    config = load_config(config_path, seed=seed, storage_base=cluster_storage_base())
    for name in ("artifact_root", "registry_root", "runs_root"):
        value = getattr(config.storage, name)
        if not _is_url(value):
            raise ConfigError(
                f"{config_path}: storage.{name}",
                f"{value!r} is a path on this machine, which no pod can reach: leave it "
                f"relative (it then lives under ${storage.ARTIFACT_ROOT_ENV}) or give a URL",
            )
    source = config.data.source
    if isinstance(source, FileSource) and not _is_url(source.url):
        raise ConfigError(
            f"{config_path}: data.source.url",
            f"{source.url!r} is a file on this machine, which no pod can read: put the data "
            "on the object store and give its URL (s3://...)",
        )
    return config


def collect_from_store(runs_root: str, run_id: str, **record: Any) -> RunRecord:
    """``collect_run_record`` over the object store; any failure to read it (a refused
    port-forward, missing keys, a 403) is a ``RunRecordError`` naming the location."""
    try:
        return collect_run_record(runs_root=runs_root, run_id=run_id, **record)
    except RunRecordError:
        raise
    except Exception as err:
        raise RunRecordError(
            run_location(runs_root, run_id), f"unreadable ({type(err).__name__}: {err})"
        ) from err


def store_and_read_back(runs_root: str, record: RunRecord) -> RunRecord:
    """Store the assembled record beside the pods' step records and return it as read
    back from there. A success without any step record means the pods wrote elsewhere (or
    nothing): an error, not a record without steps."""
    if record.status == "success" and not record.steps:
        raise RunRecordError(
            run_location(runs_root, record.run_id),
            "the run succeeded but no step record is there: the pods write to another "
            f"store than ${storage.ARTIFACT_ROOT_ENV} here names, or could not write",
        )
    write_run_record(runs_root, record)
    return read_run_record(runs_root, record.run_id)
