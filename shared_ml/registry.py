"""A versioned model registry with champion/challenger promotion.

The index is one JSON file, rewritten atomically under an inter-process file lock, so
several pipelines can register at once without losing or duplicating versions. A model
already registered (same model bytes and same config fingerprint) returns its existing
version: re-running a pipeline never adds a duplicate.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from shared_ml.artifacts import atomic_write_text
from shared_ml.errors import RegistryError

INDEX_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RegistrationResult:
    version: int
    promoted: bool
    champion_version: int | None
    reason: str
    already_registered: bool

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class ModelRegistry:
    def __init__(self, root: str, name: str) -> None:
        if "://" in root and not root.startswith("file://"):
            # The lock is a local file lock; an object store cannot provide it.
            raise RegistryError(
                f"registry_root {root!r}: the registry needs a local or shared POSIX path"
            )
        self.root = Path(root.removeprefix("file://")) / name
        self.index_path = self.root / "index.json"
        self._lock = FileLock(str(self.root / ".index.lock"), timeout=120)

    def _read(self) -> dict[str, Any]:
        if not self.index_path.exists():
            return {"schema_version": INDEX_SCHEMA_VERSION, "champion": None, "versions": []}
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
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            index = self._read()
            for entry in index["versions"]:
                if (
                    entry.get("model_digest") == model_digest  # older entries: sha256, no match
                    and entry["config_fingerprint"] == config_fingerprint
                ):
                    return RegistrationResult(
                        version=entry["version"],
                        promoted=index["champion"] == entry["version"],
                        champion_version=index["champion"],
                        reason="already registered",
                        already_registered=True,
                    )
            version = max((v["version"] for v in index["versions"]), default=0) + 1
            champion = next(
                (v for v in index["versions"] if v["version"] == index["champion"]), None
            )
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
            index["versions"].append(
                {
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
            )
            if promoted:
                index["champion"] = version
            atomic_write_text(
                self.index_path, json.dumps(index, indent=2, sort_keys=True), durable=True
            )
            return RegistrationResult(
                version=version,
                promoted=promoted,
                champion_version=index["champion"],
                reason=reason,
                already_registered=False,
            )
