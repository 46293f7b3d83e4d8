"""One benchmark session: a tool at one profile in one repetition, with its services up.

``Session`` carries what every scenario needs (the adapter, the plan, where results are
collected) and ``guarded`` turns whatever a scenario raises into a recorded outcome:
``CapabilityMissing`` from the adapter -> "not_supported" (with the adapter's message),
no services for a services figure -> "not_applicable", a figure the adapter cannot report
-> "unavailable", any other exception -> "error" with the message.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from benchmarks.harness.figures import FIGURES, RECOVERY_SCENARIOS
from benchmarks.harness.plan import Plan
from benchmarks.tools.base import CapabilityMissing, ToolAdapter
from shared_ml.records import RunRecord
from shared_ml.spec import PIPELINE

SUCCESS_STATES = {"success", "succeeded", "completed"}
PIPELINE_UPSTREAM = {s.name: sorted(s.upstream) for s in PIPELINE.steps}
FAULT_STEP = "train"
# Scenarios that run the ML pipeline (and so come after one warm-up run).
PIPELINE_SCENARIOS = {"latency", "throughput", *RECOVERY_SCENARIOS}


class NotApplicable(Exception):
    """The scenario means nothing for this tool (e.g. cold start of a tool with no server)."""


class ScenarioFailed(Exception):
    """The scenario ran but its premise broke (e.g. a clean run failed)."""


def is_success(status: str) -> bool:
    return status.lower() in SUCCESS_STATES


def tool_seconds(record: RunRecord) -> float:
    """Accepted to terminal of a run, both by the tool's own clock (the run record's
    ``accepted_at`` and ``ended_at``, which each adapter maps: docs/benchmarks.md)."""
    if record.accepted_at is None or record.ended_at is None:
        missing = [n for n in ("accepted_at", "ended_at") if getattr(record, n) is None]
        raise ScenarioFailed(
            f"run {record.run_id} ({record.tool}): its record lacks the tool's "
            f"{' and '.join(missing)}, so its latency cannot be timed by the tool's clock"
        )
    return (record.ended_at - record.accepted_at).total_seconds()


# --- what a benchmark collects -------------------------------------------------------------
@dataclass
class Collected:
    observations: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    timelines: list[dict[str, Any]] = field(default_factory=list)
    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    adhoc: list[dict[str, Any]] = field(default_factory=list)  # the script-vs-runner cases
    # One entry per session run: when, the machine's load then, and how long it took.
    sessions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Session:
    """One tool at one profile in one repetition, with its services up."""

    plan: Plan
    tool: str
    profile: str
    repetition: int
    adapter: ToolAdapter
    execution_model: str
    collected: Collected
    work_dir: Path
    clean_end_to_end_s: float | None = None
    scenario: str = ""

    def record(self, key: str, value: float, **params: Any) -> None:
        if key not in FIGURES:
            raise KeyError(f"figure {key!r} is not defined in benchmarks.harness.figures")
        self.collected.observations.append(
            {
                "figure": key,
                "scenario": FIGURES[key].scenario,
                "tool": self.tool,
                "profile": self.profile,
                "execution_model": self.execution_model,
                "repetition": self.repetition,
                "params": params,
                "value": float(value),
            }
        )

    def outcome(
        self,
        status: str,
        reason: str = "",
        figure: str | None = None,
        duration_s: float | None = None,
    ) -> None:
        entry = {
            "scenario": self.scenario,
            "figure": figure,
            "tool": self.tool,
            "profile": self.profile,
            "repetition": self.repetition,
            "status": status,
            "reason": reason,
        }
        if duration_s is not None:
            entry["duration_s"] = round(duration_s, 3)
        self.collected.outcomes.append(entry)

    def unavailable(self, figure: str, reason: str) -> None:
        self.outcome("unavailable", reason, figure)

    def config_for(self, label: str, source: Path | None = None) -> Path:
        """A copy of the plan's pipeline config (or ``source``) with storage in a fresh
        folder of its own, so no run reuses another run's (content-addressed) artifacts."""
        source = source or self.plan.pipeline_config
        raw = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        storage = raw.get("storage") or {}
        # On a cluster the tool's pods cannot see this machine's folders: keep the
        # config's own (shared, e.g. s3://) storage there; run ids keep runs apart.
        local_storage = not any("://" in str(v) for v in storage.values())
        if self.plan.target == "local" and local_storage:
            base = self.work_dir / "runs" / f"{self.tool}-{self.profile}-r{self.repetition}" / label
            raw["storage"] = {
                "artifact_root": str(base / "artifacts"),
                "registry_root": str(base / "registry"),
                "runs_root": str(base / "runs"),
            }
        path = (
            self.work_dir
            / "configs"
            / f"{self.tool}-{self.profile}-r{self.repetition}-{label}.yaml"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        return path

    def timed_run(
        self, label: str, faults: dict[str, dict[str, Any]] | None = None
    ) -> tuple[RunRecord, float, datetime, Path]:
        """Run the pipeline; its seconds are the tool's own: accepted to terminal, from the
        run record (``tool_seconds``), so the harness's polling, log-ins and record
        assembly are outside the timer."""
        config = self.config_for(label)
        triggered = datetime.now(UTC)
        record = self.adapter.run_pipeline(config, faults=faults)
        return record, tool_seconds(record), triggered, config

    def clean_run_seconds(self) -> float:
        """The clean pipeline's end to end in this session (from the latency scenario when
        it ran, else one clean run now)."""
        if self.clean_end_to_end_s is None:
            record, seconds, _, _ = self.timed_run("clean")
            if record.status != "success":
                raise ScenarioFailed(f"the clean reference run ended {record.status}")
            self.clean_end_to_end_s = seconds
        return self.clean_end_to_end_s

    def timeline(
        self,
        triggered: datetime,
        records: list[tuple[str, RunRecord]],
        markers: list[tuple[str, datetime]] = (),  # type: ignore[assignment]
    ) -> None:
        events = []
        for run_label, run in records:
            for s in run.steps:
                events.append(
                    {
                        "run": run_label,
                        "step": s.key,  # train[forest] for a branch
                        "attempt": s.attempt,
                        "outcome": s.outcome,
                        "start_s": (s.started_at - triggered).total_seconds(),
                        "end_s": (s.ended_at - triggered).total_seconds() if s.ended_at else None,
                    }
                )
        self.collected.timelines.append(
            {
                "scenario": self.scenario,
                "tool": self.tool,
                "profile": self.profile,
                "repetition": self.repetition,
                "execution_model": self.execution_model,
                "events": events,
                "markers": [
                    {"label": label, "at_s": (at - triggered).total_seconds()}
                    for label, at in markers
                ],
            }
        )


@contextmanager
def guarded(s: Session, scenario: str) -> Iterator[None]:
    """Run one scenario; turn what happened into an outcome instead of an abort."""
    s.scenario = scenario
    started = time.perf_counter()

    def took() -> float:
        return time.perf_counter() - started

    try:
        yield
    except CapabilityMissing as err:
        s.outcome(
            "not_supported", str(err) or f"{s.tool} does not implement {scenario}", None, took()
        )
    except NotApplicable as err:
        s.outcome("not_applicable", str(err), None, took())
    except Exception as err:
        s.outcome("error", f"{type(err).__name__}: {err}", None, took())
        s.collected.log.append(
            f"{s.tool}/{s.profile}/r{s.repetition}/{scenario}:\n{traceback.format_exc()}"
        )
    else:
        s.outcome("ok", "", None, took())
