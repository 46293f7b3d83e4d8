"""Code tier: the model registry on an object store (moto's S3 server on 127.0.0.1).

The same promotion rules as the local registry, and no lost or duplicated version when
several processes register at once with nothing but create-only PUTs between them.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
from pathlib import Path
from typing import Any

import pytest

from shared_ml import registry as registry_module
from shared_ml import storage
from shared_ml.errors import RegistryError
from shared_ml.registry import ModelRegistry, RegistrationResult
from tests.unit.s3_server import s3_endpoint, use_endpoint

__all__ = ["s3_endpoint"]  # the session fixture, used by name

WRITERS = 5
OWN_MODELS = 4  # per writer, plus one model that every writer registers


@pytest.fixture
def bucket(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> str:
    name = request.node.name.lower().replace("_", "-").replace("[", "-").strip("]-")[:50]
    return use_endpoint(monkeypatch, s3_endpoint, f"r-{name}")


def register(registry: ModelRegistry, digest: str, f1: float, gate: bool = True):
    return registry.register(
        model_uri=f"mem://{digest}",
        model_digest=digest,
        config_fingerprint="cfg",
        metrics={"f1": f1},
        gate_passed=gate,
        primary_metric="f1",
    )


SEQUENCE = [("a", 0.80, False), ("b", 0.70, True), ("c", 0.60, True), ("d", 0.90, True)]
SEQUENCE += [("e", 0.90, True), ("b", 0.70, True), ("f", 0.95, False)]


def test_same_rules_as_the_local_registry(bucket: str, tmp_path: Path) -> None:
    local = ModelRegistry(str(tmp_path), "m")
    remote = ModelRegistry(f"{bucket}/registry", "m")
    for digest, f1, gate in SEQUENCE:
        assert register(remote, digest, f1, gate) == register(local, digest, f1, gate)

    def comparable(index: dict[str, Any]) -> dict[str, Any]:
        drop = ("registered_at", "registration_id")
        versions = [{k: v for k, v in e.items() if k not in drop} for e in index["versions"]]
        return {**index, "versions": versions}

    assert comparable(remote.read()) == comparable(local.read())
    assert remote.read()["champion"] == 4 and remote.champion()["model_digest"] == "d"
    assert remote.version(2)["model_digest"] == "b" and remote.version(99) is None
    assert storage.list_names(f"{bucket}/registry/m/versions") == [
        f"{n:010d}.json" for n in range(1, 7)
    ]


def _register_models(writer: int, start: Any, results: Any) -> None:
    """One writer process: its own models and the shared one, as fast as it can."""
    registry = ModelRegistry(os.environ["REGISTRY_ROOT"], "shared")
    start.wait()
    outcomes = []
    for i in [*range(OWN_MODELS), "shared"]:
        digest = f"w{writer}-m{i}" if i != "shared" else "shared-model"
        f1 = 0.5 + ((writer * 7 + (0 if i == "shared" else i) * 3) % 10) / 20
        outcome = register(registry, digest, f1, gate=(writer + (i == "shared")) % 3 != 0)
        outcomes.append((digest, outcome.as_dict()))
    results.put((writer, outcomes))


def test_concurrent_writers_lose_nothing(bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_ROOT", f"{bucket}/registry")
    context = multiprocessing.get_context("spawn")  # s3fs holds threads: no fork
    start, results = context.Event(), context.Queue()
    writers = [
        context.Process(target=_register_models, args=(w, start, results)) for w in range(WRITERS)
    ]
    for process in writers:
        process.start()
    start.set()
    outcomes = dict(results.get(timeout=120) for _ in writers)
    for process in writers:
        process.join(timeout=30)
        assert process.exitcode == 0

    index = ModelRegistry(f"{bucket}/registry", "shared").read()
    versions = index["versions"]
    # Every distinct model once, numbered 1..n without a gap.
    assert [v["version"] for v in versions] == list(range(1, WRITERS * OWN_MODELS + 2))
    by_digest = {v["model_digest"]: v for v in versions}
    assert len(by_digest) == len(versions)
    # Each writer's answer names the version that holds its model; the shared model was
    # created by one writer and found registered by every other.
    for writer_outcomes in outcomes.values():
        for digest, outcome in writer_outcomes:
            assert by_digest[digest]["version"] == outcome["version"]
    shared = [o for w in outcomes.values() for d, o in w if d == "shared-model"]
    assert sorted(o["already_registered"] for o in shared) == [False] + [True] * (WRITERS - 1)
    # The champion history replays: each decision was taken against the versions before.
    champion: dict[str, Any] | None = None
    for v in versions:
        assert v["champion_before"] == (champion["version"] if champion else None)
        beats = champion is None or v["metrics"]["f1"] > champion["metrics"]["f1"]
        assert v["promoted"] == (v["gate_passed"] and beats), v
        if v["promoted"]:
            champion = v
    assert champion is not None and index["champion"] == champion["version"]
    assert champion["metrics"]["f1"] == max(
        v["metrics"]["f1"] for v in versions if v["gate_passed"]
    )


def test_store_ignoring_conditional_writes_is_refused(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that overwrites despite If-None-Match (as if the header were ignored)."""

    def overwrite(location: str, data: bytes) -> bool:
        storage.write_bytes(location, data)
        return True

    monkeypatch.setattr(storage, "create_exclusive", overwrite)
    monkeypatch.setattr(registry_module, "_conditional_writes_checked", set())
    registry = ModelRegistry(f"{bucket}/registry", "m")
    with pytest.raises(RegistryError, match=r"does not honour create-only writes"):
        register(registry, "a", 0.5)
    assert registry.read()["versions"] == []


def test_damaged_registry_is_reported_with_its_url(bucket: str) -> None:
    registry = ModelRegistry(f"{bucket}/registry", "m")
    assert isinstance(register(registry, "a", 0.5), RegistrationResult)
    second = f"{bucket}/registry/m/versions/{2:010d}.json"
    storage.write_text(second, "{half a json")
    with pytest.raises(RegistryError, match=re.escape(f"{second}: corrupt registry version")):
        registry.read()
    storage.remove(second)
    storage.write_text(f"{bucket}/registry/m/versions/{3:010d}.json", json.dumps({"version": 3}))
    with pytest.raises(RegistryError, match=r"versions \[1, 3\] are not 1..2"):
        register(registry, "b", 0.6)
