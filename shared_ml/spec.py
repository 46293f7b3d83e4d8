"""The pipeline graph as data: the single source of truth for every tool.

Each orchestrator's pipeline is written in its own idiom, and a test per tool proves its
graph (steps and edges) equals ``PIPELINE``. Inputs name ``"<upstream step>.<output>"``;
edges are derived from them, so the data flow and the dependency graph cannot disagree.

Steps marked ``per_candidate`` fan out: one branch per model candidate of the config
(Airflow ``expand``, Prefect ``map``, KFP ``ParallelFor``, a pool in the plain runner).
A per-candidate step consuming another per-candidate step's output reads the same
branch's; a plain step consuming a per-candidate output receives the list of every
branch's, in candidate order (the fan-in). ``expand`` turns the spec into the concrete
task graph of one run, which each tool's test compares with what the tool ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True)
class RetryPolicy:
    """How often a step is retried after a retryable error, and how long to wait.

    The n-th retry waits ``min(delay_s * backoff**(n-1), max_delay_s)``.
    Non-retryable errors (``shared_ml.errors.NonRetryableError``) are never retried.
    """

    max_retries: int = 2
    delay_s: float = 1.0
    backoff: float = 2.0
    max_delay_s: float = 30.0

    def delay_before_retry(self, retry_number: int) -> float:
        return min(self.delay_s * self.backoff ** max(retry_number - 1, 0), self.max_delay_s)


@dataclass(frozen=True)
class StepSpec:
    name: str
    inputs: dict[str, str]  # parameter name -> "<step>.<output>"
    outputs: tuple[str, ...]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    description: str = ""
    per_candidate: bool = False  # one branch per model candidate

    @property
    def upstream(self) -> frozenset[str]:
        return frozenset(ref.split(".", 1)[0] for ref in self.inputs.values())


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    steps: tuple[StepSpec, ...]
    # Errors of these classes fail a step at once, in every tool.
    non_retryable: tuple[str, ...] = ("shared_ml.errors.NonRetryableError",)

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate step names in {names}")
        produced = {f"{s.name}.{o}" for s in self.steps for o in s.outputs}
        for s in self.steps:
            missing = sorted(set(s.inputs.values()) - produced)
            if missing:
                raise ValueError(f"step {s.name!r} consumes {missing}, which no step produces")
        self.topological_order  # noqa: B018 - raises on cycles

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    def step(self, name: str) -> StepSpec:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"no step {name!r} in pipeline {self.name!r}; steps: {self.step_names}")

    @cached_property
    def edges(self) -> frozenset[tuple[str, str]]:
        return frozenset((up, s.name) for s in self.steps for up in s.upstream)

    @cached_property
    def topological_order(self) -> tuple[str, ...]:
        # Kahn's algorithm, ties broken by declaration order so every tool agrees.
        remaining = {s.name: set(s.upstream) for s in self.steps}
        order: list[str] = []
        while remaining:
            ready = [n for n in self.step_names if n in remaining and not remaining[n]]
            if not ready:
                raise ValueError(f"cycle among steps {sorted(remaining)}")
            for n in ready:
                order.append(n)
                del remaining[n]
                for deps in remaining.values():
                    deps.discard(n)
        return tuple(order)

    def collected_inputs(self, name: str) -> frozenset[str]:
        """Parameters of a plain step that receive a list, one item per candidate branch."""
        step = self.step(name)
        if step.per_candidate:
            return frozenset()
        return frozenset(
            param
            for param, ref in step.inputs.items()
            if self.step(ref.split(".", 1)[0]).per_candidate
        )

    def expand(self, candidates: tuple[str, ...] | list[str]) -> dict[str, frozenset[str]]:
        """The task graph of one run: task key -> upstream task keys.

        A per-candidate step ``train`` becomes ``train[<candidate>]`` for each candidate.
        """
        if not candidates:
            raise ValueError("a run needs at least one model candidate")
        graph: dict[str, frozenset[str]] = {}
        for name in self.topological_order:
            step = self.step(name)
            for branch in candidates if step.per_candidate else (None,):
                upstream: set[str] = set()
                for up in step.upstream:
                    if not self.step(up).per_candidate:
                        upstream.add(up)
                    elif branch is not None:
                        upstream.add(task_key(up, branch))
                    else:
                        upstream.update(task_key(up, c) for c in candidates)
                graph[task_key(name, branch)] = frozenset(upstream)
        return graph

    def downstream_of(self, name: str) -> frozenset[str]:
        """Every step that (transitively) depends on ``name``."""
        found: set[str] = set()
        frontier = {name}
        while frontier:
            frontier = {d for (u, d) in self.edges if u in frontier} - found
            found |= frontier
        return frozenset(found)


def task_key(step: str, branch: str | None = None) -> str:
    """``train[rf]`` for a branch of a per-candidate step, else the step name."""
    return f"{step}[{branch}]" if branch is not None else step


def parse_task_key(key: str) -> tuple[str, str | None]:
    """The inverse of ``task_key``."""
    if key.endswith("]") and "[" in key:
        step, branch = key[:-1].split("[", 1)
        return step, branch
    return key, None


_FAST = RetryPolicy(max_retries=2, delay_s=1.0, backoff=2.0, max_delay_s=10.0)

PIPELINE = PipelineSpec(
    name="orchbench_ml",
    steps=(
        StepSpec(
            "ingest",
            inputs={},
            outputs=("dataset",),
            retry=RetryPolicy(max_retries=3, delay_s=1.0, backoff=2.0, max_delay_s=10.0),
            description="Load the configured source into a dataset artifact (an Arrow IPC file).",
        ),
        StepSpec(
            "validate",
            inputs={"dataset": "ingest.dataset"},
            outputs=("report",),
            retry=_FAST,
            description="Check schema, types, nulls, label set and row count.",
        ),
        StepSpec(
            "preprocess",
            inputs={"dataset": "ingest.dataset", "report": "validate.report"},
            outputs=("train_set", "test_set", "transformer"),
            retry=_FAST,
            description="Split, then fit a ColumnTransformer on the training split only.",
        ),
        StepSpec(
            "train",
            inputs={"train_set": "preprocess.train_set"},
            outputs=("model",),
            retry=_FAST,
            description="Fit one candidate estimator (one branch per candidate).",
            per_candidate=True,
        ),
        StepSpec(
            "evaluate",
            inputs={"model": "train.model", "test_set": "preprocess.test_set"},
            outputs=("metrics",),
            retry=_FAST,
            description="Accuracy, F1, ROC AUC, prediction hash and the gate, per candidate.",
            per_candidate=True,
        ),
        StepSpec(
            "select",
            inputs={"models": "train.model", "metrics": "evaluate.metrics"},
            outputs=("model", "metrics"),
            retry=_FAST,
            description="Pick the best candidate on the gate's primary metric (the fan-in).",
        ),
        StepSpec(
            "register",
            inputs={
                "model": "select.model",
                "transformer": "preprocess.transformer",
                "metrics": "select.metrics",
            },
            outputs=("registry_entry",),
            retry=RetryPolicy(max_retries=3, delay_s=1.0, backoff=2.0, max_delay_s=10.0),
            description="Version the model; promote it if it passes the gate and beats the champion.",
        ),
        StepSpec(
            "score",
            inputs={"registry_entry": "register.registry_entry", "dataset": "ingest.dataset"},
            outputs=("predictions",),
            retry=_FAST,
            description="The champion after registration scores the run's partition.",
        ),
    ),
)
