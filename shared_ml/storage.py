"""Where a config's storage lives, and whole-file reads and writes there.

Storage roots (``artifact_root``, ``registry_root``, ``runs_root``) given as relative paths
resolve under a base: ``$ORCHBENCH_ARTIFACT_ROOT`` when it is set, else ``$ORCHBENCH_HOME``
(default: the current directory). Infra sets ``$ORCHBENCH_ARTIFACT_ROOT`` in every pod to
the cluster's object store (``s3://<bucket>``), so every pod of a run, and the ``orchbench``
client reading the run back through a port-forward, agree on one place. Absolute paths
and URLs in a config are used as given.

A remote location goes through fsspec (s3fs for ``s3://``). s3fs, through botocore, reads
the endpoint and credentials from the standard environment: ``AWS_ENDPOINT_URL``
(SeaweedFS on kind, a port-forward on the runner), ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` and ``AWS_DEFAULT_REGION``; on EKS, IRSA gives the keys. Local
locations (plain paths, ``file://``) use plain file I/O, as before.

Every write replaces a whole file at once: a temporary file renamed into place locally,
one PUT on an object store (whose objects are never seen half-written).
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import posixpath
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared_ml.errors import ConfigError

if TYPE_CHECKING:
    import fsspec

ARTIFACT_ROOT_ENV = "ORCHBENCH_ARTIFACT_ROOT"
HOME_ENV = "ORCHBENCH_HOME"


def orchbench_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or os.getcwd()).resolve()


def is_remote(location: str) -> bool:
    """Whether ``location`` is a URL served through fsspec (plain paths and ``file://`` are
    local)."""
    return "://" in location and not location.startswith("file://")


def _local(location: str) -> str:
    return location.removeprefix("file://")


def _checked_base(value: str, where: str) -> str:
    value = value.strip()
    if "://" in value:
        scheme, rest = value.split("://", 1)
        if not scheme or (scheme == "file" and not rest.startswith("/")) or not rest.strip("/"):
            raise ConfigError(
                where, f"expected a URL such as s3://bucket/prefix or file:///path, got {value!r}"
            )
        return value.rstrip("/")
    if not os.path.isabs(value):
        raise ConfigError(
            where, f"expected a URL such as s3://bucket/prefix or an absolute path, got {value!r}"
        )
    return os.path.normpath(value)


def storage_base(explicit: str | None = None) -> str:
    """The base that relative storage roots resolve under: ``explicit`` if given, else
    ``$ORCHBENCH_ARTIFACT_ROOT`` if set and not empty, else ``$ORCHBENCH_HOME``."""
    if explicit is not None:
        return _checked_base(explicit, "storage base")
    from_env = os.environ.get(ARTIFACT_ROOT_ENV, "").strip()
    if from_env:
        return _checked_base(from_env, f"${ARTIFACT_ROOT_ENV}")
    return str(orchbench_home())


def resolve_root(value: str, base: str | None = None) -> str:
    """One storage root: a URL or an absolute path as given, a relative path under
    ``storage_base(base)``."""
    if "://" in value or os.path.isabs(value):
        return value
    resolved_base = storage_base(base)
    relative = posixpath.normpath(value.replace(os.sep, "/"))
    if relative == ".." or relative.startswith("../"):
        raise ConfigError("storage", f"{value!r} leaves the storage base {resolved_base!r}")
    if "://" in resolved_base:
        return resolved_base if relative == "." else f"{resolved_base}/{relative}"
    return os.path.normpath(os.path.join(resolved_base, relative))


def join(root: str, *parts: str) -> str:
    """``root`` and ``parts`` joined with ``/`` (a URL) or the OS separator (a path)."""
    if is_remote(root):
        return "/".join([root.rstrip("/"), *parts])
    return os.path.join(root, *parts)


def _remote_fs(location: str) -> tuple[fsspec.AbstractFileSystem, str]:
    import fsspec

    return fsspec.core.url_to_fs(location)


def write_text(location: str, text: str, *, durable: bool = False) -> None:
    """Replace the file at ``location`` with ``text`` (UTF-8) in one step. ``durable``
    also fsyncs a local file before the rename (an object store's PUT is durable)."""
    write_bytes(location, text.encode("utf-8"), durable=durable)


def write_bytes(location: str, data: bytes, *, durable: bool = False) -> None:
    if is_remote(location):
        fs, path = _remote_fs(location)
        fs.pipe_file(path, data)
        return
    path = _local(location)
    parent = os.path.dirname(path) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-{uuid.uuid4().hex}-{os.path.basename(path)}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_text(location: str) -> str:
    """The file at ``location`` as text; ``FileNotFoundError`` when there is none."""
    return read_bytes(location).decode("utf-8")


def read_bytes(location: str) -> bytes:
    if is_remote(location):
        fs, path = _remote_fs(location)
        return fs.cat_file(path)
    with open(_local(location), "rb") as fh:
        return fh.read()


def read_many(locations: list[str]) -> dict[str, bytes]:
    """Several files at once (concurrent requests on an object store); a missing file
    raises ``FileNotFoundError``."""
    remote = [loc for loc in locations if is_remote(loc)]
    found = {loc: read_bytes(loc) for loc in locations if not is_remote(loc)}
    if remote:
        fs, _ = _remote_fs(remote[0])
        # cat_ranges, not cat: cat expands glob characters, and step names hold brackets.
        paths = [fs._strip_protocol(loc) for loc in remote]
        for location, content in zip(remote, fs.cat_ranges(paths, None, None), strict=True):
            if isinstance(content, FileNotFoundError):
                raise FileNotFoundError(errno.ENOENT, "not found", location)
            if isinstance(content, BaseException):
                raise content
            found[location] = content
    return found


def exists(location: str) -> bool:
    if is_remote(location):
        fs, path = _remote_fs(location)
        return fs.exists(path)
    return os.path.exists(_local(location))


def list_names(folder: str, pattern: str = "*", *, folders: bool = False) -> list[str]:
    """The sorted names of the files (with ``folders``, of the subfolders: an object
    store's common prefixes) directly in ``folder`` that match ``pattern`` (``fnmatch``);
    none when the folder does not exist. Hidden names (a write's temporary file, a lock)
    are left out."""
    if is_remote(folder):
        fs, path = _remote_fs(folder)
        try:
            entries = fs.ls(path, detail=True, refresh=True)
        except FileNotFoundError:
            return []
        kind = "directory" if folders else "file"
        names = [posixpath.basename(e["name"].rstrip("/")) for e in entries if e["type"] == kind]
    else:
        try:
            with os.scandir(_local(folder)) as scan:
                names = [e.name for e in scan if (e.is_dir() if folders else e.is_file())]
        except FileNotFoundError:
            return []
    return sorted(n for n in names if not n.startswith(".") and fnmatch.fnmatchcase(n, pattern))


def remove(location: str) -> None:
    """Delete one file; nothing happens when it is already gone."""
    with contextlib.suppress(FileNotFoundError):
        if is_remote(location):
            fs, path = _remote_fs(location)
            fs.rm_file(path)
        else:
            os.remove(_local(location))


def _precondition_failed(err: BaseException) -> bool:
    """Whether a failed PUT was refused by its ``If-None-Match: *`` condition.

    s3fs turns the 412 into ``FileExistsError`` only when the server names the condition
    (AWS, moto); SeaweedFS's error has no ``Condition`` element (weed/s3api/s3err/
    s3api_errors.go, RESTErrorResponse, at tag 4.34), so s3fs raises a plain ``OSError``
    whose cause is the botocore error. ``ConditionalRequestConflict`` (409) is AWS's answer
    while another conditional write to the key is in flight: not ours either.
    """
    if isinstance(err, FileExistsError):
        return True
    response: Any = getattr(err.__cause__, "response", None) or getattr(err, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "412", "ConditionalRequestConflict") or status == 412


def create_exclusive(location: str, data: bytes) -> bool:
    """Create the file at ``location`` only if nothing is there; whether this call
    created it. Exactly one of several concurrent callers wins.

    On an object store: a PUT with ``If-None-Match: *`` (S3 conditional writes; AWS since
    2024-08, SeaweedFS under a per-object lock, moto). Locally: the content goes to a
    temporary file that is hard-linked to the name, which fails if the name exists, so
    a reader never sees the file half-written either.
    """
    if is_remote(location):
        fs, path = _remote_fs(location)
        try:
            fs.pipe_file(path, data, mode="create")
        except OSError as err:
            if _precondition_failed(err):
                return False
            raise
        return True
    path = _local(location)
    parent = os.path.dirname(path) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-{uuid.uuid4().hex}-{os.path.basename(path)}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return True
