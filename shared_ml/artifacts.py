"""Content-addressed artifact store over fsspec.

An artifact's URI is derived from the BLAKE3 digest of its bytes, so writing the same
content twice is a no-op and re-running a step never duplicates anything. Writes are
atomic: bytes go to a temporary name next to the target and are renamed into place, so a
reader never sees half an artifact (object stores such as S3 put whole objects anyway).

BLAKE3 rather than sha256: hashing is most of what the store adds to a step (about 40 MB
per run at 100,000 rows: 25-40 ms with sha256 on the 2-core machine, about 7 ms with
BLAKE3), and like sha256 it is a cryptographic hash: distinct contents do not share a
name in practice.

Local roots (a path or ``file://``) are served with plain file I/O: serializers stream
into the temporary file through a hashing writer, so a large artifact is never copied
into one ``bytes`` object first. Other URLs go through fsspec, imported only then.

Artifacts are immutable values. Within one process the store keeps the few most recent
frames and objects it wrote or read, so a step running after its producer in the same
process (the local runner, Prefect's in-process flow) skips the read and the decode.
Callers must therefore not modify what ``get_frame``/``get_object`` return; numpy arrays
inside a memoized mapping are handed out read-only so that a mistake fails loudly.
"""

from __future__ import annotations

import io
import os
import pickle
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from blake3 import blake3

from shared_ml import storage

if TYPE_CHECKING:
    import fsspec

PICKLE_PROTOCOL = 5
# What one process keeps for its next steps (see module docstring): the most recent
# artifacts, at most this many and about this many bytes of arrays and frames.
MEMO_ENTRIES = 6
MEMO_BYTES = 512 * 2**20
_memo: OrderedDict[str, tuple[Any, int]] = OrderedDict()
_memo_lock = threading.Lock()  # tasks of one flow may run in threads


def content_digest(data: bytes) -> str:
    """The hex digest an artifact with these bytes is named by."""
    return blake3(data).hexdigest()


def local_path(url: str) -> str | None:
    """The filesystem path of a local URL (plain path or ``file://``), else ``None``."""
    if url.startswith("file://"):
        return url.removeprefix("file://")
    return None if "://" in url else url


def _remote_fs(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    import fsspec

    return fsspec.core.url_to_fs(url)


# Chunks at least this big are hashed in a second thread while this one writes them:
# both release the GIL, so on two or more cores the pair costs the slower of the two.
PARALLEL_HASH_BYTES = 1 << 20


def _byte_view(data: Any) -> memoryview:
    """``data`` as flat bytes: BLAKE3 takes only byte buffers, and pickle hands over numpy
    arrays' memory as a ``PickleBuffer`` of their own element type."""
    view = data.raw() if isinstance(data, pickle.PickleBuffer) else memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


class _HashingWriter:
    """A write-only file object that hashes what passes through it."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.hasher = blake3()

    def write(self, data: Any) -> int:
        octets = _byte_view(data)
        if octets.nbytes < PARALLEL_HASH_BYTES:
            self.hasher.update(octets)
            return self._fh.write(data)
        hashing = threading.Thread(target=self.hasher.update, args=(octets,))
        hashing.start()
        try:
            return self._fh.write(data)
        finally:
            hashing.join()  # chunks are hashed in order: one at a time

    # pyarrow's Python file adapter asks for these.
    closed = False

    def flush(self) -> None:
        self._fh.flush()

    def tell(self) -> int:
        return self._fh.tell()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def _approximate_bytes(value: Any) -> int:
    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(index=False, deep=False).sum())
    if isinstance(value, dict):
        return sum(v.nbytes for v in value.values() if isinstance(v, np.ndarray))
    return 0  # fitted estimators and transformers: small next to the data


def _memoize(uri: str, value: Any) -> None:
    size = _approximate_bytes(value)
    if size > MEMO_BYTES:
        return
    with _memo_lock:
        _memo[uri] = (value, size)
        _memo.move_to_end(uri)
        while len(_memo) > MEMO_ENTRIES or sum(n for _, n in _memo.values()) > MEMO_BYTES:
            _memo.popitem(last=False)


def _memoized(uri: str) -> Any | None:
    with _memo_lock:
        entry = _memo.get(uri)
    return None if entry is None else entry[0]


def _read_only(value: Any) -> Any:
    """A frame's shallow copy (copy-on-write keeps it independent), or a mapping whose
    numpy arrays are read-only views; other objects as they are."""
    if isinstance(value, pd.DataFrame):
        return value.copy(deep=False)
    if isinstance(value, dict):
        frozen = {}
        for key, item in value.items():
            if isinstance(item, np.ndarray):
                item = item.view()
                item.flags.writeable = False
            frozen[key] = item
        return frozen
    return value


def clear_memo() -> None:
    """Forget every memoized artifact (end of a run; tests)."""
    with _memo_lock:
        _memo.clear()


# Copy-on-write makes a shallow copy of a frame independent of its source; before pandas
# 3 it did not, so frames are only memoized where it holds.
_FRAMES_ARE_COPY_ON_WRITE = int(pd.__version__.split(".", 1)[0]) >= 3


FRAME_SUFFIX = ".arrow"
_ARROW_MAGIC = b"ARROW1"  # how every Arrow IPC file starts


def _frame_from_ipc(table: pa.Table, columns: list[str] | None) -> pd.DataFrame:
    if columns is not None:
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise KeyError(f"columns {missing} are not in the stored frame")
        table = table.select(columns)
    return table.to_pandas()


class ArtifactStore:
    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self._local_root = local_path(self.root)

    def _uri(self, kind: str, digest: str, suffix: str) -> str:
        return f"{self.root}/{kind}/{digest[:2]}/{digest}{suffix}"

    def _put(self, kind: str, suffix: str, serialize: Callable[[IO[bytes]], None]) -> str:
        """Serialize into the store; the URI comes from the bytes' digest."""
        if self._local_root is None:
            buffer = io.BytesIO()
            serialize(buffer)
            return self.put_bytes(buffer.getvalue(), kind, suffix)
        folder = os.path.join(self._local_root, kind)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}{suffix}")
        try:
            with open(tmp, "wb") as fh:
                writer = _HashingWriter(fh)
                serialize(writer)  # type: ignore[arg-type]
            digest = writer.hasher.hexdigest()
            self._place(tmp, kind, digest, suffix)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return self._uri(kind, digest, suffix)

    def _place(self, tmp: str, kind: str, digest: str, suffix: str) -> None:
        """Rename a finished temporary file to its content address (atomic on POSIX)."""
        target = os.path.join(self._local_root or "", kind, digest[:2], f"{digest}{suffix}")
        if os.path.exists(target):
            return  # same bytes are already there; the caller removes the temporary file
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(tmp, target)

    def put_bytes(self, data: bytes, kind: str, suffix: str) -> str:
        if self._local_root is not None:
            return self._put(kind, suffix, lambda fh: fh.write(data))
        uri = self._uri(kind, content_digest(data), suffix)
        fs, path = _remote_fs(uri)
        if not fs.exists(path):
            # An object-store PUT is atomic: readers see the whole object or none.
            fs.pipe_file(path, data)
        return uri

    @staticmethod
    def _open(uri: str) -> IO[bytes]:
        path = local_path(uri)
        if path is not None:
            return open(path, "rb")
        fs, remote = _remote_fs(uri)
        return fs.open(remote, "rb")

    def get_bytes(self, uri: str) -> bytes:
        with self._open(uri) as fh:
            return fh.read()

    # Typed helpers. Formats are chosen for byte-for-byte determinism: Arrow IPC and pickle
    # protocol 5 carry no timestamps (unlike zip containers, which embed mtimes).
    def put_frame(self, frame: pd.DataFrame, kind: str = "datasets") -> str:
        """Store a frame as an Arrow IPC file (Feather v2, uncompressed).

        Frames here are intermediate data, only ever read back by the next step: IPC
        writes in half Parquet's time (no encoding pass) and reads without decoding.
        Parquet artifacts written by earlier versions still read (``get_frame``).
        """

        def serialize(fh: IO[bytes]) -> None:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            with pa.ipc.new_file(fh, table.schema) as writer:
                writer.write_table(table)

        uri = self._put(kind, FRAME_SUFFIX, serialize)
        if _FRAMES_ARE_COPY_ON_WRITE:
            _memoize(uri, frame.copy(deep=False))
        return uri

    def get_frame(self, uri: str, columns: list[str] | None = None) -> pd.DataFrame:
        memoized = _memoized(uri) if _FRAMES_ARE_COPY_ON_WRITE else None
        if memoized is not None:
            frame = _read_only(memoized)
            return frame if columns is None else frame[columns]
        path = local_path(uri)
        # A local file is mapped, not read: columns convert straight from the page cache.
        source = pa.memory_map(path) if path is not None else self._open(uri)
        with source:
            # The format is told by the file's first bytes, not its name: KFP hands a step
            # its input artifacts at paths of its own, without our suffix.
            is_arrow = source.read(len(_ARROW_MAGIC)) == _ARROW_MAGIC
            source.seek(0)
            if is_arrow:
                frame = _frame_from_ipc(pa.ipc.open_file(source).read_all(), columns)
            else:  # a Parquet dataset from an earlier version
                frame = pd.read_parquet(source, engine="pyarrow", columns=columns)
        if columns is None and _FRAMES_ARE_COPY_ON_WRITE:
            _memoize(uri, frame.copy(deep=False))
        return frame

    @staticmethod
    def digest_of(uri: str) -> str:
        """The digest of an artifact's bytes, read from its content-addressed name."""
        return uri.rsplit("/", 1)[-1].split(".", 1)[0]

    def content_digest_of(self, uri: str) -> str:
        """The digest of the bytes at ``uri``: read from the name when the store named it,
        computed otherwise (a tool may hand a step its own copy at a path of its own)."""
        name = self.digest_of(uri)
        if len(name) == 64 and all(c in "0123456789abcdef" for c in name):
            return name
        return content_digest(self.get_bytes(uri))

    def put_object(self, obj: Any, kind: str) -> str:
        uri = self._put(kind, ".pkl", lambda fh: pickle.dump(obj, fh, protocol=PICKLE_PROTOCOL))
        _memoize(uri, obj)
        return uri

    def get_object(self, uri: str) -> Any:
        memoized = _memoized(uri)
        if memoized is not None:
            return _read_only(memoized)
        # Only artifacts this store wrote are ever unpickled (content-addressed paths).
        with self._open(uri) as fh:
            obj = pickle.load(fh)
        _memoize(uri, obj)
        return _read_only(obj)

    def put_json(self, payload: Any, kind: str) -> str:
        import json

        data = json.dumps(payload, sort_keys=True, indent=2).encode()
        return self.put_bytes(data, kind, ".json")

    def get_json(self, uri: str) -> Any:
        import json

        return json.loads(self.get_bytes(uri))


def atomic_write_text(path: str | os.PathLike[str], text: str, durable: bool = False) -> None:
    """Write a local file atomically (temporary file in the same folder, then rename).

    ``durable`` also fsyncs before the rename, so the content survives a power loss
    (the registry needs that; run records only need atomicity).
    """
    storage.write_bytes(os.fspath(path), text.encode("utf-8"), durable=durable)
