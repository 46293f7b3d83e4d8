"""Code tier: each step on its own, artifacts content-addressed and deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shared_ml.artifacts import (
    PARALLEL_HASH_BYTES,
    ArtifactStore,
    atomic_write_text,
    clear_memo,
    content_digest,
)
from shared_ml.config import PipelineConfig, validate_config
from shared_ml.errors import ConfigError
from shared_ml.runner import run_pipeline
from shared_ml.steps.evaluate import evaluate
from shared_ml.steps.ingest import ingest, make_synthetic
from shared_ml.steps.preprocess import preprocess
from shared_ml.steps.register import register
from shared_ml.steps.score import score
from shared_ml.steps.select import select
from shared_ml.steps.train import train
from shared_ml.steps.validate import validate
from tests.unit.helpers import small_config, synthetic_config


def test_steps_chain_by_hand(orchbench_home: Path) -> None:
    config = synthetic_config()
    dataset = ingest(config)
    assert dataset.metadata["rows"] == 2_000
    report = validate(config, dataset.outputs["dataset"])
    prep = preprocess(config, dataset.outputs["dataset"], report.outputs["report"])
    # 6 numeric + 2 categorical columns one-hot encoded into 4 levels each
    assert prep.metadata["features_out"] == 6 + 2 * 4
    assert prep.metadata["train_rows"] + prep.metadata["test_rows"] == 2_000
    models, evaluations = [], []
    for candidate in config.candidate_names:
        model = train(config, prep.outputs["train_set"], candidate)
        scored = evaluate(config, model.outputs["model"], prep.outputs["test_set"], candidate)
        assert set(scored.metadata["metrics"]) == {"accuracy", "f1", "roc_auc"}
        assert len(scored.metadata["prediction_hash"]) == 64
        models.append(model.outputs["model"])
        evaluations.append(scored.outputs["metrics"])
    # The fan-in does not depend on the order a tool collected the branches in.
    chosen = select(config, models, evaluations)
    assert select(config, models[::-1], evaluations[::-1]).metadata == chosen.metadata
    assert chosen.metadata["selected"] in config.candidate_names
    entry = register(
        config, chosen.outputs["model"], prep.outputs["transformer"], chosen.outputs["metrics"]
    )
    scored = score(config, entry.outputs["registry_entry"], dataset.outputs["dataset"])
    assert scored.metadata["rows_scored"] == 2_000


def branches_with_metrics(
    candidates: dict[str, dict[str, float]], config_order: list[str]
) -> tuple[PipelineConfig, dict[str, tuple[str, str]]]:
    """A config listing ``config_order``'s candidates, and each candidate's (model, metrics)
    artifacts as its branch would hand them to ``select``, with the given metrics."""
    config = small_config(
        model={
            "candidates": [{"name": n, "estimator": "logistic_regression"} for n in config_order]
        }
    )
    store = ArtifactStore(config.storage.artifact_root)
    branches = {}
    for name, metrics in candidates.items():
        model = store.put_bytes(f"model of {name}".encode(), "models", ".pkl")
        evaluation = {
            "candidate": name,
            "model_digest": store.content_digest_of(model),
            "metrics": metrics,
            "prediction_hash": content_digest(name.encode()),
            "gate_passed": True,
            "gate_failures": [],
        }
        branches[name] = (model, store.put_json(evaluation, "metrics"))
    return config, branches


@pytest.mark.parametrize("config_order", [["first", "second"], ["second", "first"]])
def test_select_breaks_a_tie_on_the_primary_metric_the_same_way_in_any_order(
    orchbench_home: Path, config_order: list[str]
) -> None:
    # Equal f1 (the primary metric): the next metric decides, before the config position.
    metrics = {
        "first": {"f1": 0.9, "roc_auc": 0.95, "accuracy": 0.93},
        "second": {"f1": 0.9, "roc_auc": 0.97, "accuracy": 0.91},
    }
    config, branches = branches_with_metrics(metrics, config_order)
    assert config.gate.primary_metric == "f1"
    for collected in (["first", "second"], ["second", "first"]):
        chosen = select(
            config, [branches[n][0] for n in collected], [branches[n][1] for n in collected]
        )
        assert chosen.metadata["selected"] == "second"
        assert chosen.outputs == {"model": branches["second"][0], "metrics": branches["second"][1]}
        assert [row["candidate"] for row in chosen.metadata["candidates"]] == ["second", "first"]


@pytest.mark.parametrize("config_order", [["first", "second"], ["second", "first"]])
def test_select_breaks_a_tie_on_every_metric_by_config_position(
    orchbench_home: Path, config_order: list[str]
) -> None:
    same = {"f1": 0.9, "roc_auc": 0.95, "accuracy": 0.93}
    config, branches = branches_with_metrics({"first": same, "second": same}, config_order)
    for collected in (["first", "second"], ["second", "first"]):
        chosen = select(
            config, [branches[n][0] for n in collected], [branches[n][1] for n in collected]
        )
        assert chosen.metadata["selected"] == config_order[0]
        assert chosen.outputs["model"] == branches[config_order[0]][0]


def test_transformer_fitted_on_training_split_only(orchbench_home: Path) -> None:
    config = synthetic_config()
    store = ArtifactStore(config.storage.artifact_root)
    dataset = ingest(config).outputs["dataset"]
    prep = preprocess(config, dataset, validate(config, dataset).outputs["report"])
    transformer = store.get_object(prep.outputs["transformer"])
    train_set = store.get_object(prep.outputs["train_set"])
    scaler = transformer.named_transformers_["numeric"].named_steps["scale"]
    assert scaler.n_samples_seen_ == train_set["X"].shape[0]


@pytest.mark.parametrize("estimator", ["logistic_regression", "random_forest", "gradient_boosting"])
def test_every_estimator_trains(estimator: str, orchbench_home: Path) -> None:
    config = synthetic_config(model={"estimator": estimator, "params": {}})
    record = run_pipeline(config)
    assert record.status == "success", [s.error for s in record.steps]
    assert record.metrics["accuracy"] > 0.6


def test_multiclass_synthetic(orchbench_home: Path) -> None:
    config = synthetic_config(
        data={"source": {"kind": "synthetic", "rows": 3000, "classes": 3}, "target": "y"}
    )
    record = run_pipeline(config)
    assert record.status == "success"
    assert 0 < record.metrics["roc_auc"] <= 1


def test_synthetic_scales_to_a_million_rows() -> None:
    config = synthetic_config(rows=1_000_000)
    frame = make_synthetic(config.data.source, "label", config.seed)
    assert len(frame) == 1_000_000
    assert frame["label"].nunique() == 2


def test_identical_runs_write_byte_identical_artifacts(tmp_path: Path, monkeypatch) -> None:
    digests = []
    for home in ("a", "b"):
        monkeypatch.setenv("ORCHBENCH_HOME", str(tmp_path / home))
        record = run_pipeline(small_config())
        artifacts = sorted((tmp_path / home / "var" / "artifacts").rglob("*.*"))
        digests.append(
            ([p.relative_to(tmp_path / home) for p in artifacts], record.prediction_hash)
        )
    assert digests[0] == digests[1]
    assert len(digests[0][0]) >= 8


def test_rerun_writes_nothing_new(orchbench_home: Path) -> None:
    config = small_config()
    run_pipeline(config)
    before = sorted(p for p in (orchbench_home / "var" / "artifacts").rglob("*") if p.is_file())
    run_pipeline(config)
    after = sorted(p for p in (orchbench_home / "var" / "artifacts").rglob("*") if p.is_file())
    assert before == after
    assert not [p for p in after if p.name.startswith(".tmp-")]


def test_store_on_another_fsspec_filesystem() -> None:
    store = ArtifactStore("memory://orchbench-test")
    uri = store.put_bytes(b"hello", "blobs", ".txt")
    assert uri.startswith("memory://") and store.get_bytes(uri) == b"hello"
    assert store.put_bytes(b"hello", "blobs", ".txt") == uri


def test_streamed_artifacts_are_named_by_the_digest_of_their_bytes(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    frame = pd.DataFrame({"x": np.arange(1000, dtype=float), "c": ["a", "b"] * 500})
    features = {"X": np.random.default_rng(0).random((500, 7)), "y": np.arange(500)}
    # Pickle hands numpy memory to the writer as typed buffers: float, int32, Fortran order,
    # and one above the size that is hashed in a second thread.
    arrays = {
        "int32": np.arange(999, dtype=np.int32),
        "fortran": np.asfortranarray(np.random.default_rng(1).random((300, 5))),
        "large": np.random.default_rng(2).random(PARALLEL_HASH_BYTES // 8 + 3),
    }
    uris = [store.put_frame(frame), store.put_object(features, "features")]
    uris.append(store.put_object(arrays, "features"))
    for uri in uris:
        assert ArtifactStore.digest_of(uri) == content_digest(Path(uri).read_bytes())
    clear_memo()
    assert np.array_equal(store.get_object(uris[-1])["fortran"], arrays["fortran"])
    assert not list((tmp_path / "store").rglob(".tmp-*"))


def test_memoized_artifacts_cannot_be_changed_through_a_reader(tmp_path: Path) -> None:
    store = ArtifactStore(f"file://{tmp_path / 'store'}")
    uri = store.put_object({"X": np.zeros((4, 3)), "y": np.zeros(4)}, "features")
    for fresh in (False, True):  # from the in-process memo, then from disk
        if fresh:
            clear_memo()
        loaded = store.get_object(uri)
        with pytest.raises(ValueError, match="read-only"):
            loaded["X"][0, 0] = 1.0
        assert store.get_object(uri)["X"].sum() == 0


def test_memoized_frame_is_independent_of_its_producer_and_readers(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    uri = store.put_frame(frame)
    frame.loc[0, "x"] = 99.0  # the producer changes its own frame after writing it
    reader = store.get_frame(uri)
    reader["x"] = reader["x"] * 10  # a reader changes its copy
    clear_memo()
    on_disk = store.get_frame(uri)
    assert store.get_frame(uri)["x"].tolist() == on_disk["x"].tolist() == [1.0, 2.0, 3.0]
    assert reader["x"].tolist() == [10.0, 20.0, 30.0]


def test_frames_round_trip_their_dtypes_and_are_read_by_content_not_name(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    frame = pd.DataFrame(
        {
            "x": np.linspace(0, 1, 50),
            "text": [f"t{i % 3}" for i in range(50)],
            "maybe": pd.array([1, None] * 25, dtype="Int64"),
            "level": pd.Categorical(["a", "b"] * 25),
            "flag": [True, False] * 25,
        }
    )
    uri = store.put_frame(frame)
    assert uri.endswith(".arrow")
    # KFP hands a step its input at a path without our suffix; an earlier version stored
    # datasets as Parquet: both must read back as the same frame.
    kfp_path = tmp_path / "kfp-input"
    kfp_path.write_bytes(Path(uri).read_bytes())
    legacy_path = tmp_path / "legacy"
    frame.to_parquet(legacy_path, index=False)
    clear_memo()
    for source in (uri, str(kfp_path), str(legacy_path)):
        pd.testing.assert_frame_equal(store.get_frame(source), frame)
        clear_memo()  # a column subset read from the file, not from the memo
        assert store.get_frame(source, columns=["flag", "x"]).columns.tolist() == ["flag", "x"]
    with pytest.raises(KeyError, match="nope"):
        store.get_frame(str(kfp_path), columns=["x", "nope"])


def test_memo_keeps_recent_artifacts_within_its_byte_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared_ml import artifacts

    monkeypatch.setattr(artifacts, "MEMO_BYTES", 1_000_000)
    store = ArtifactStore(str(tmp_path / "store"))
    clear_memo()
    uris = [
        store.put_object({"X": np.full(75_000, float(i))}, "features")  # 600 kB each
        for i in range(2)
    ]
    too_big = store.put_object({"X": np.zeros(200_000)}, "features")  # 1.6 MB: never kept
    for uri in (*uris, too_big):
        Path(uri).unlink()  # only what is memoized can still be read
    assert store.get_object(uris[1])["X"][0] == 1.0
    for evicted in (uris[0], too_big):
        with pytest.raises(FileNotFoundError):
            store.get_object(evicted)
    clear_memo()
    with pytest.raises(FileNotFoundError):
        store.get_object(uris[1])


def test_csv_source_over_fsspec(orchbench_home: Path) -> None:
    csv = orchbench_home / "tiny.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{'xy'[i % 2]},{i % 2}\n" for i in range(60)))
    config = validate_config(
        {"data": {"source": {"kind": "file", "url": f"file://{csv}"}, "target": "label"}}
    )
    assert ingest(config).metadata["rows"] == 60


def test_unknown_file_format() -> None:
    config = validate_config({"data": {"source": {"kind": "file", "url": "/x/data.xlsx"}}})
    with pytest.raises(ConfigError, match=r"data\.source\.format"):
        ingest(config)


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "file.json"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["file.json"]
