"""The fan-in: pick the best candidate on the gate's primary metric.

Candidates that fail the quality gate rank below every one that passes. Ties are broken
by the other metrics (in a fixed order), then by the candidate's position in the config,
so every tool selects the same one whatever order it collected the branches in.
"""

from __future__ import annotations

from shared_ml.artifacts import ArtifactStore
from shared_ml.config import PipelineConfig
from shared_ml.errors import NonRetryableError
from shared_ml.logs import get_logger
from shared_ml.steps import StepOutput

log = get_logger(__name__)

METRIC_ORDER = ("f1", "roc_auc", "accuracy")


def ranking_key(evaluation: dict, primary: str, position: int) -> tuple:
    """Sort key: best first. Gate passes, then the primary metric, the other metrics,
    then config order."""
    metrics = evaluation["metrics"]
    others = [m for m in METRIC_ORDER if m != primary]
    return (
        not evaluation["gate_passed"],
        -metrics[primary],
        *(-metrics[m] for m in others),
        position,
    )


def select(config: PipelineConfig, models: list[str], metrics: list[str]) -> StepOutput:
    if len(models) != len(metrics):
        raise NonRetryableError(f"select got {len(models)} models but {len(metrics)} metrics")
    store = ArtifactStore(config.storage.artifact_root)
    order = list(config.candidate_names)
    evaluations = [store.get_json(uri) for uri in metrics]
    seen = [e["candidate"] for e in evaluations]
    if sorted(seen) != sorted(order):
        raise NonRetryableError(f"select got branches {sorted(seen)}, expected {sorted(order)}")
    primary = config.gate.primary_metric
    ranked = sorted(
        range(len(evaluations)),
        key=lambda i: ranking_key(evaluations[i], primary, order.index(seen[i])),
    )
    best = evaluations[ranked[0]]
    # The model of the chosen branch, matched by content: tools may collect branches in
    # any order, and hand the models over at paths of their own.
    model_uri = next(
        (uri for uri in models if store.content_digest_of(uri) == best["model_digest"]), None
    )
    if model_uri is None:
        raise NonRetryableError(
            f"no collected model has the digest {best['model_digest']} of the selected "
            f"candidate {best['candidate']!r}"
        )
    log.info(
        "selected %s on %s; ranking: %s",
        best["candidate"],
        primary,
        ", ".join(
            f"{seen[i]} {evaluations[i]['metrics'].get(primary, float('nan')):.4f}"
            f"{'' if evaluations[i]['gate_passed'] else ' (gate failed)'}"
            for i in ranked
        ),
    )
    table = [
        {
            "candidate": evaluations[i]["candidate"],
            "rank": rank + 1,
            "gate_passed": evaluations[i]["gate_passed"],
            **evaluations[i]["metrics"],
        }
        for rank, i in enumerate(ranked)
    ]
    return StepOutput(
        outputs={"model": model_uri, "metrics": metrics[ranked[0]]},
        metadata={
            "selected": best["candidate"],
            "primary_metric": primary,
            "metrics": best["metrics"],
            "prediction_hash": best["prediction_hash"],
            "gate_passed": best["gate_passed"],
            "candidates": table,
        },
    )
