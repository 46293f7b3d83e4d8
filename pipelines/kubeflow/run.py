"""Run the pipeline (or a no-op scaling workload) with KFP's local runner, no cluster, no Docker.

    python -m pipelines.kubeflow.run pipeline --config C --run-id R [--seed S]
        [--date YYYY-MM-DD] [--webhook-url URL]
    python -m pipelines.kubeflow.run workload --shape chain|fanout --size N --run-id R

The ML pipeline runs from the committed IR (``orchbench_ml.yaml``): the same document a
cluster runs. ``kfp.local.SubprocessRunner(use_venv=False)`` starts one subprocess of this very
interpreter per task, so the components import shared_ml from this environment and nothing
is ever pip-installed. Roots are explicit and project-local, under
``$ORCHBENCH_HOME/var/kubeflow`` unless ``--root`` says otherwise:

- ``pipeline_root``: KFP output artifacts and, in ``.kfp_cache``, the local cache entries,
  shared by all runs so that a re-run of a run id resumes from the cached steps;
- ``workspace/<run id>``: the run's workspace, which KFP deletes when the run ends;
- ``runs/<run id>/tasks.jsonl``: the index of the run's task logs, each kept next to its
  task's outputs in the pipeline root (``task_logs``: kfp.local only prints them).

``--date`` is the run's logical date (the partition it processes); without it the run stands
for today, resolved once here and passed to every step as the ``logical_date`` parameter.

The last line printed on stdout is a JSON summary (status, times, logical date, kfp version).
Exit 0 when the run succeeded, 1 when it failed, 2 on a bad config or date.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sys
import warnings
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pipelines.kubeflow.ir import IR_PATH
from pipelines.kubeflow.task_logs import index_path, keep_task_logs
from shared_ml.config import load_config, orchbench_home, parse_logical_date
from shared_ml.errors import ConfigError

ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # kfp.local colours task names in its messages


def load_local_ir(ir_path: Path, home: Path) -> Any:
    """The committed IR, loaded to run here. Its tasks set ``ORCHBENCH_HOME`` to the
    image's home for their pods (``cluster_env``), and kfp.local applies a task's container
    env over this process's: here each task gets this machine's ``home`` instead. Nothing
    else changes. (kfp re-reads a loaded component's YAML text whenever it needs the spec,
    so the text itself is what must say it.)"""
    import yaml
    from kfp import components

    from pipelines.kubeflow.cluster_env import HOME_ENV

    documents = list(yaml.safe_load_all(ir_path.read_text(encoding="utf-8")))
    for executor in documents[0]["deploymentSpec"]["executors"].values():
        for variable in executor["container"].get("env", []):
            if variable["name"] == HOME_ENV:
                variable["value"] = str(home)
    return components.load_component_from_text(yaml.safe_dump_all(documents, sort_keys=False))


def default_root() -> Path:
    return orchbench_home() / "var" / "kubeflow"


def init_local(root: Path, run_id: str) -> dict[str, str]:
    """``kfp.local.init`` with explicit roots; caching on."""
    from kfp import local

    roots = {
        "pipeline_root": str(root / "pipeline_root"),
        "workspace_root": str(root / "workspace" / run_id),
    }
    for folder in roots.values():
        Path(folder).mkdir(parents=True, exist_ok=True)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=roots["pipeline_root"],
        workspace_root=roots["workspace_root"],
        raise_on_error=True,
        enable_caching=True,
    )
    return roots


def _quiet_known_warnings() -> None:
    # The subprocess runner warns for any image whose name lacks "python"; ours is the
    # shared_ml image, and locally the components run in this interpreter on purpose.
    warnings.filterwarnings("ignore", message="You may be attemping to run a task")


class CacheHits(logging.Handler):
    """Collects the tasks kfp.local served from its cache (it only logs them)."""

    PATTERN = re.compile(r"^Task (\S+) cache hit")

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.tasks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = self.PATTERN.match(record.getMessage())
        if found:
            self.tasks.append(found.group(1))


def run(
    call: Any, arguments: dict[str, Any], root: Path, run_id: str, keep_logs: bool = False
) -> dict[str, Any]:
    """Run ``call(**arguments)`` locally; return the summary (never raises on task failure).

    ``keep_logs``: keep each task attempt's log next to its outputs (``task_logs``)."""
    _quiet_known_warnings()
    roots = init_local(root, run_id)
    cache_hits = CacheHits()
    logging.getLogger().addHandler(cache_hits)
    started = datetime.now(UTC)
    error = None
    try:
        with keep_task_logs(root) if keep_logs else contextlib.nullcontext():
            call(**arguments)
        status = "success"
    except RuntimeError as err:  # kfp.local raises RuntimeError when a task failed
        status, error = "failed", ANSI_COLOUR.sub("", str(err))
    finally:
        logging.getLogger().removeHandler(cache_hits)
    ended = datetime.now(UTC)
    return {
        "status": status,
        "run_id": run_id,
        "started_at": started.isoformat(),
        "ended_at": ended.isoformat(),
        "duration_s": round((ended - started).total_seconds(), 6),
        "error": error,
        "cache_hits": cache_hits.tasks,
        "kfp_version": metadata.version("kfp"),
        "task_logs": str(index_path(root, run_id)) if keep_logs else None,
        **roots,
    }


def run_pipeline(
    config_path: str,
    run_id: str,
    seed: int | None = None,
    webhook_url: str = "",
    root: Path | None = None,
    ir_path: Path = IR_PATH,
    logical_date: date | None = None,
) -> dict[str, Any]:

    # The partition is set here once (today for a manual run), so that every step, and
    # the run record, stand for the same date even if the run crosses midnight.
    config = load_config(config_path, seed=seed).for_partition(logical_date)
    pipeline = load_local_ir(ir_path, orchbench_home())
    arguments = {
        "config_json": config.model_dump_json(exclude={"partition"}),
        "run_id": run_id,
        "seed": config.seed,
        "logical_date": config.logical_date.isoformat(),
        "webhook_url": webhook_url,
    }
    summary = run(pipeline, arguments, root or default_root(), run_id, keep_logs=True)
    summary.update(
        {
            "ir": str(ir_path),
            "runs_root": config.storage.runs_root,
            "logical_date": arguments["logical_date"],
        }
    )
    return summary


def run_workload(
    shape: str, size: int, run_id: str, runs_root: str, root: Path | None = None
) -> dict[str, Any]:
    from pipelines.kubeflow.workloads import workload_pipeline

    pipeline = workload_pipeline(shape, size)
    summary = run(
        pipeline, {"run_id": run_id, "runs_root": runs_root}, root or default_root(), run_id
    )
    summary.update({"shape": shape, "size": size, "runs_root": runs_root})
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.kubeflow.run")
    parser.add_argument("--root", type=Path, help="default: $ORCHBENCH_HOME/var/kubeflow")
    parser.add_argument("--verbose", action="store_true", help="show KFP's task logs")
    commands = parser.add_subparsers(dest="command", required=True)
    ml = commands.add_parser("pipeline", help="the ML pipeline, from the committed IR")
    ml.add_argument("--config", required=True)
    ml.add_argument("--run-id", required=True)
    ml.add_argument("--seed", type=int)
    ml.add_argument("--date", help="the run's logical date, YYYY-MM-DD (default: today)")
    ml.add_argument("--webhook-url", default="")
    noop = commands.add_parser("workload", help="the no-op scaling workload")
    noop.add_argument("--shape", choices=("chain", "fanout"), required=True)
    noop.add_argument("--size", type=int, required=True)
    noop.add_argument("--run-id", required=True)
    noop.add_argument("--runs-root", help="default: $ORCHBENCH_HOME/var/runs")
    args = parser.parse_args(argv)
    # INFO reaches the cache-hit collector; the console shows it only with --verbose.
    logging.basicConfig(level=logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        raw_date = getattr(args, "date", None)  # only the pipeline command has --date
        logical_date = parse_logical_date(raw_date, "--date") if raw_date else None
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        if args.command == "pipeline":
            summary = run_pipeline(
                args.config,
                args.run_id,
                args.seed,
                args.webhook_url,
                root=args.root,
                logical_date=logical_date,
            )
        else:
            runs_root = args.runs_root or str(orchbench_home() / "var" / "runs")
            summary = run_workload(args.shape, args.size, args.run_id, runs_root, root=args.root)
    except ConfigError as err:
        print(f"error: invalid config: {err}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0 if summary["status"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
