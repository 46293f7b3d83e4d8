"""Code tier: the pipeline graph is well-formed data."""

from __future__ import annotations

import pytest

from shared_ml.spec import (
    PIPELINE,
    PipelineSpec,
    RetryPolicy,
    StepSpec,
    parse_task_key,
    task_key,
)


def test_topological_order_respects_edges() -> None:
    order = PIPELINE.topological_order
    assert order[0] == "ingest" and order[-1] == "score"
    for upstream, downstream in PIPELINE.edges:
        assert order.index(upstream) < order.index(downstream)


def test_edges_derived_from_inputs() -> None:
    assert ("preprocess", "evaluate") in PIPELINE.edges
    assert ("select", "register") in PIPELINE.edges
    assert ("ingest", "score") in PIPELINE.edges
    assert PIPELINE.downstream_of("train") == {"evaluate", "select", "register", "score"}


def test_expand_gives_one_branch_per_candidate_and_a_fan_in() -> None:
    graph = PIPELINE.expand(("a", "b"))
    assert set(graph) == {
        "ingest", "validate", "preprocess", "train[a]", "train[b]",
        "evaluate[a]", "evaluate[b]", "select", "register", "score",
    }  # fmt: skip
    assert graph["train[a]"] == {"preprocess"}
    assert graph["evaluate[b]"] == {"train[b]", "preprocess"}  # its own branch only
    assert graph["select"] == {"train[a]", "train[b]", "evaluate[a]", "evaluate[b]"}
    assert PIPELINE.collected_inputs("select") == {"models", "metrics"}
    assert PIPELINE.collected_inputs("evaluate") == frozenset()
    with pytest.raises(ValueError, match="at least one"):
        PIPELINE.expand(())


def test_task_keys_round_trip() -> None:
    assert parse_task_key(task_key("train", "forest")) == ("train", "forest")
    assert parse_task_key(task_key("select")) == ("select", None)


def test_every_step_has_a_function() -> None:
    from shared_ml.execution import step_function

    for name in PIPELINE.step_names:
        assert callable(step_function(name))


def test_unknown_input_rejected() -> None:
    with pytest.raises(ValueError, match="no step produces"):
        PipelineSpec("p", (StepSpec("a", {"x": "b.y"}, ("out",)),))


def test_cycle_rejected() -> None:
    with pytest.raises(ValueError, match="cycle"):
        PipelineSpec(
            "p",
            (StepSpec("a", {"x": "b.out"}, ("out",)), StepSpec("b", {"x": "a.out"}, ("out",))),
        )


def test_backoff_delays() -> None:
    policy = RetryPolicy(max_retries=4, delay_s=1, backoff=2, max_delay_s=5)
    assert [policy.delay_before_retry(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
