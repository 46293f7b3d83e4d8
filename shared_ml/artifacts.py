"""Content-addressed artifact store over fsspec.

An artifact's URI is derived from the sha256 of its bytes, so writing the same content
twice is a no-op and re-running a step never duplicates anything. Writes are atomic:
bytes go to a temporary name next to the target and are renamed into place, so a
reader never sees half an artifact (object stores such as S3 put whole objects anyway).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import uuid
from typing import Any

import fsspec
import pandas as pd

PICKLE_PROTOCOL = 5


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol
    return "file" in protocols or "local" in protocols


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactStore:
    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self.fs, self._root_path = fsspec.core.url_to_fs(self.root)

    def _uri(self, kind: str, digest: str, suffix: str) -> str:
        return f"{self.root}/{kind}/{digest[:2]}/{digest}{suffix}"

    def put_bytes(self, data: bytes, kind: str, suffix: str) -> str:
        digest = sha256_bytes(data)
        uri = self._uri(kind, digest, suffix)
        _, path = fsspec.core.url_to_fs(uri)
        if self.fs.exists(path):
            return uri
        if not _is_local(self.fs):
            # An object-store PUT is atomic: readers see the whole object or none.
            self.fs.pipe_file(path, data)
            return uri
        parent = path.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}-{digest[:8]}{suffix}"
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)  # atomic on POSIX
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return uri

    def get_bytes(self, uri: str) -> bytes:
        fs, path = fsspec.core.url_to_fs(uri)
        with fs.open(path, "rb") as fh:
            return fh.read()

    # Typed helpers. Formats are chosen for byte-for-byte determinism: Parquet without
    # timestamps, pickle protocol 5 (no zip containers, which embed mtimes).
    def put_frame(self, frame: pd.DataFrame, kind: str = "datasets") -> str:
        buffer = io.BytesIO()
        # Dictionary-encode only text columns: on floats it costs 4x the write time and
        # makes the file bigger, not smaller.
        text_columns = [
            str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])
        ]
        frame.to_parquet(
            buffer, index=False, engine="pyarrow", use_dictionary=text_columns or False
        )
        return self.put_bytes(buffer.getvalue(), kind, ".parquet")

    def get_frame(self, uri: str, columns: list[str] | None = None) -> pd.DataFrame:
        fs, path = fsspec.core.url_to_fs(uri)
        if _is_local(fs):
            # Straight from the file: no extra in-memory copy of the whole dataset.
            return pd.read_parquet(path, engine="pyarrow", columns=columns)
        with fs.open(path, "rb") as fh:
            return pd.read_parquet(fh, engine="pyarrow", columns=columns)

    @staticmethod
    def digest_of(uri: str) -> str:
        """The sha256 of an artifact's bytes, read from its content-addressed name."""
        return uri.rsplit("/", 1)[-1].split(".", 1)[0]

    def put_object(self, obj: Any, kind: str) -> str:
        return self.put_bytes(pickle.dumps(obj, protocol=PICKLE_PROTOCOL), kind, ".pkl")

    def get_object(self, uri: str) -> Any:
        # Only artifacts this store wrote are ever unpickled (content-addressed paths).
        return pickle.loads(self.get_bytes(uri))

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
    path = os.fspath(path)
    parent = os.path.dirname(path) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-{uuid.uuid4().hex}-{os.path.basename(path)}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
