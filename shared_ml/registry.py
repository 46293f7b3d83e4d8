"""A versioned model registry with champion/challenger promotion.

Two stores, one set of rules (``_decide``), safe against concurrent writers in both:

- A local (or shared POSIX) ``registry_root``: one JSON index, rewritten atomically under
  an inter-process file lock.
- An object store (``s3://...``), where pods share no lock: one object per version,
  ``versions/<n>.json``, written with a create-only PUT (``If-None-Match: *``). A writer
  reads every version, decides, and creates version ``max + 1``; if another writer created
  it first, the PUT is refused, and it reads again and decides again. Version ``n`` is
  only ever created by a writer that saw ``1..n-1``, so versions stay contiguous, none is
  lost, and each promotion was decided against the champion of the versions before it.
  The champion is the last promoted version, exactly as the index's ``champion`` is.

A model already registered (same model bytes and same config fingerprint) returns its
existing version: re-running a pipeline never adds a duplicate.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from shared_ml import storage
from shared_ml.errors import RegistryError

INDEX_SCHEMA_VERSION = 1
VERSION_DIGITS = 10  # versions/0000000001.json: names sort in version order
# How often a writer on an object store decides again after losing a version number.
MAX_CREATE_ATTEMPTS = 100


@dataclass(frozen=True)
class RegistrationResult:
    version: int
    promoted: bool
    champion_version: int | None
    reason: str
    already_registered: bool

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _empty_index() -> dict[str, Any]:
    return {"schema_version": INDEX_SCHEMA_VERSION, "champion": None, "versions": []}


def _decide(
    index: dict[str, Any],
    *,
    model_uri: str,
    model_digest: str,
    config_fingerprint: str,
    metrics: dict[str, float],
    gate_passed: bool,
    primary_metric: str,
    extra: dict[str, Any] | None,
) -> tuple[RegistrationResult, dict[str, Any] | None]:
    """The outcome of registering against ``index``, and the new version's entry (None
    when the model is already registered)."""
    for entry in index["versions"]:
        if (
            entry.get("model_digest") == model_digest  # older entries: sha256, no match
            and entry["config_fingerprint"] == config_fingerprint
        ):
            result = RegistrationResult(
                version=entry["version"],
                promoted=index["champion"] == entry["version"],
                champion_version=index["champion"],
                reason="already registered",
                already_registered=True,
            )
            return result, None
    version = max((v["version"] for v in index["versions"]), default=0) + 1
    champion = next((v for v in index["versions"] if v["version"] == index["champion"]), None)
    score = metrics[primary_metric]
    if not gate_passed:
        promoted, reason = False, "failed the quality gate"
    elif champion is None:
        promoted, reason = True, "first model to pass the gate"
    elif score > champion["metrics"][primary_metric]:
        promoted, reason = (
            True,
            f"{primary_metric} {score:.4f} beats champion v{champion['version']} "
            f"({champion['metrics'][primary_metric]:.4f})",
        )
    else:
        promoted, reason = (
            False,
            f"{primary_metric} {score:.4f} does not beat champion v{champion['version']} "
            f"({champion['metrics'][primary_metric]:.4f})",
        )
    entry = {
        "version": version,
        "model_uri": model_uri,
        "model_digest": model_digest,
        "config_fingerprint": config_fingerprint,
        "metrics": metrics,
        "gate_passed": gate_passed,
        # The promotion decision, kept per version: the history of the champion.
        "promoted": promoted,
        "reason": reason,
        "champion_before": index["champion"],
        "registered_at": datetime.now(UTC).isoformat(),
        "pid": os.getpid(),
        **(extra or {}),
    }
    result = RegistrationResult(
        version=version,
        promoted=promoted,
        champion_version=version if promoted else index["champion"],
        reason=reason,
        already_registered=False,
    )
    return result, entry


class ModelRegistry:
    """The registry ``name`` under ``root``: a local path, ``file://`` or an object-store
    URL. ``read()`` gives the same index (``champion``, ``versions``) for both stores."""

    def __init__(self, root: str, name: str) -> None:
        self.remote = storage.is_remote(root)
        if self.remote:
            self.location = storage.join(root, name)
            self._store: _LocalIndex | _VersionObjects = _VersionObjects(self.location)
        else:
            self.root = Path(root.removeprefix("file://")) / name
            self.index_path = self.root / "index.json"
            self.location = str(self.root)
            self._store = _LocalIndex(self.root, self.index_path)

    def read(self) -> dict[str, Any]:
        return self._store.read()

    def version(self, number: int) -> dict[str, Any] | None:
        return self._store.version(number)

    def champion(self) -> dict[str, Any] | None:
        index = self.read()
        return next((v for v in index["versions"] if v["version"] == index["champion"]), None)

    def register(
        self,
        *,
        model_uri: str,
        model_digest: str,
        config_fingerprint: str,
        metrics: dict[str, float],
        gate_passed: bool,
        primary_metric: str,
        extra: dict[str, Any] | None = None,
    ) -> RegistrationResult:
        return self._store.register(
            model_uri=model_uri,
            model_digest=model_digest,
            config_fingerprint=config_fingerprint,
            metrics=metrics,
            gate_passed=gate_passed,
            primary_metric=primary_metric,
            extra=extra,
        )


class _LocalIndex:
    """One JSON index under a file lock (a local or shared POSIX file system)."""

    def __init__(self, root: Path, index_path: Path) -> None:
        self.root = root
        self.index_path = index_path
        self._lock = FileLock(str(root / ".index.lock"), timeout=120)

    def _read(self) -> dict[str, Any]:
        if not self.index_path.exists():
            return _empty_index()
        try:
            index = json.loads(self.index_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise RegistryError(f"{self.index_path}: corrupt registry index: {err}") from None
        if index.get("schema_version") != INDEX_SCHEMA_VERSION or "versions" not in index:
            raise RegistryError(f"{self.index_path}: unexpected registry index format")
        return index

    def read(self) -> dict[str, Any]:
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            return self._read()

    def version(self, number: int) -> dict[str, Any] | None:
        return next((v for v in self.read()["versions"] if v["version"] == number), None)

    def register(self, **registration: Any) -> RegistrationResult:
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            index = self._read()
            result, entry = _decide(index, **registration)
            if entry is None:
                return result
            index["versions"].append(entry)
            if result.promoted:
                index["champion"] = result.version
            storage.write_text(
                str(self.index_path), json.dumps(index, indent=2, sort_keys=True), durable=True
            )
            return result


# Object stores already shown to refuse a second create-only PUT, per process.
_conditional_writes_checked: set[str] = set()
_check_lock = threading.Lock()


class _VersionObjects:
    """One object per version, created with create-only PUTs (an object store)."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.versions = storage.join(location, "versions")

    def _version_location(self, number: int) -> str:
        return storage.join(self.versions, f"{number:0{VERSION_DIGITS}d}.json")

    def _parse(self, location: str, content: bytes) -> dict[str, Any]:
        try:
            entry = json.loads(content)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RegistryError(f"{location}: corrupt registry version: {err}") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("version"), int):
            raise RegistryError(f"{location}: unexpected registry version format")
        return entry

    def read(self) -> dict[str, Any]:
        names = storage.list_names(self.versions, "*.json")
        locations = [storage.join(self.versions, n) for n in names]
        try:
            contents = storage.read_many(locations)
        except FileNotFoundError as err:  # versions are never deleted
            raise RegistryError(f"{self.location}: a listed version vanished: {err}") from None
        entries = sorted(
            (self._parse(loc, contents[loc]) for loc in locations), key=lambda e: e["version"]
        )
        numbers = [e["version"] for e in entries]
        if numbers != list(range(1, len(numbers) + 1)):
            raise RegistryError(
                f"{self.versions}: versions {numbers} are not 1..{len(numbers)}; "
                "the registry was changed by something other than this code"
            )
        promoted = [e["version"] for e in entries if e.get("promoted")]
        return {
            "schema_version": INDEX_SCHEMA_VERSION,
            "champion": promoted[-1] if promoted else None,
            "versions": entries,
        }

    def version(self, number: int) -> dict[str, Any] | None:
        location = self._version_location(number)
        try:
            return self._parse(location, storage.read_bytes(location))
        except FileNotFoundError:
            return None

    def _check_conditional_writes(self) -> None:
        """Refuse a store that ignores ``If-None-Match`` (it would let two writers take
        one version number, silently losing one): a second create-only PUT of the same
        key must be refused. Checked once per process and store."""
        with _check_lock:
            if self.location in _conditional_writes_checked:
                return
            probe = storage.join(self.location, "probes", f"{uuid.uuid4().hex}.json")
            try:
                created = storage.create_exclusive(probe, b"{}")
                refused = created and not storage.create_exclusive(probe, b"{}")
            finally:
                with contextlib.suppress(OSError):  # a probe left behind harms nothing
                    storage.remove(probe)
            if not refused:
                raise RegistryError(
                    f"registry {self.location}: the object store does not honour "
                    "create-only writes (If-None-Match: *), so concurrent registrations "
                    "could overwrite each other; use a store that does (AWS S3, "
                    "SeaweedFS >= 4.x, MinIO) or a local registry_root"
                )
            _conditional_writes_checked.add(self.location)

    def register(self, **registration: Any) -> RegistrationResult:
        self._check_conditional_writes()
        token = uuid.uuid4().hex  # tells our own entry apart if a PUT's reply was lost
        for _ in range(MAX_CREATE_ATTEMPTS):
            index = self.read()
            mine = next((e for e in index["versions"] if e.get("registration_id") == token), None)
            if mine is not None:  # our PUT landed although we saw it refused
                return _outcome_of(mine)
            result, entry = _decide(index, **registration)
            if entry is None:
                return result
            entry["registration_id"] = token
            body = json.dumps(entry, indent=2, sort_keys=True).encode()
            if storage.create_exclusive(self._version_location(result.version), body):
                return result
            time.sleep(random.uniform(0.005, 0.05))  # another writer took it: decide again
        raise RegistryError(
            f"registry {self.location}: no free version after {MAX_CREATE_ATTEMPTS} "
            "attempts; too many concurrent writers"
        )


def _outcome_of(entry: dict[str, Any]) -> RegistrationResult:
    return RegistrationResult(
        version=entry["version"],
        promoted=entry["promoted"],
        champion_version=entry["version"] if entry["promoted"] else entry["champion_before"],
        reason=entry["reason"],
        already_registered=False,
    )
