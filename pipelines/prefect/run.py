"""Run a flow in this process against the Prefect server at ``$PREFECT_API_URL``.

    python -m pipelines.prefect.run pipeline --config C --run-id R [--seed S] [--faults JSON]
        [--date YYYY-MM-DD]
    python -m pipelines.prefect.run workload --shape chain|fanout --size N --run-id R

The last line printed is JSON: ``{"flow_run_id", "state_type", "state_name", "run_id"}``.
Exit 0 when the flow run completed, 1 when it failed, 2 on bad arguments or config.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

EXTRA_LOGGERS_ENV = "PREFECT_LOGGING_EXTRA_LOGGERS"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipelines.prefect.run", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    pipeline = sub.add_parser("pipeline", help="the ML pipeline")
    pipeline.add_argument("--config", required=True)
    pipeline.add_argument("--run-id", required=True)
    pipeline.add_argument("--seed", type=int)
    pipeline.add_argument("--faults", help="JSON: {step: FaultSpec fields}")
    pipeline.add_argument("--webhook-url")
    pipeline.add_argument("--date", help="logical date YYYY-MM-DD (default: today)")
    workload = sub.add_parser("workload", help="a no-op scaling workload")
    workload.add_argument("--shape", choices=("chain", "fanout"), required=True)
    workload.add_argument("--size", type=int, required=True)
    workload.add_argument("--run-id", required=True)
    workload.add_argument("--runs-root")
    return parser


def ship_shared_ml_logs() -> None:
    """Name ``shared_ml`` in ``PREFECT_LOGGING_EXTRA_LOGGERS`` before Prefect is imported
    (it configures logging on import): only then do the steps' log lines reach the
    task-run logs, and not the console only."""
    from shared_ml.logs import LOGGER_NAME

    current = os.environ.get(EXTRA_LOGGERS_ENV, "")
    names = [n.strip() for n in current.split(",") if n.strip()]
    if LOGGER_NAME not in names:
        os.environ[EXTRA_LOGGERS_ENV] = ",".join([*names, LOGGER_NAME])


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    ship_shared_ml_logs()
    if not os.environ.get("PREFECT_API_URL"):
        # Without it Prefect would start a throw-away server in this process.
        print(
            "error: PREFECT_API_URL is not set; start one with `orchbench prefect up`",
            file=sys.stderr,
        )
        return 2
    started = time.time()
    if args.what == "pipeline":
        from shared_ml.config import ConfigError, load_config, parse_logical_date

        try:
            config = load_config(args.config, seed=args.seed)
            faults = json.loads(args.faults) if args.faults else None
            day = parse_logical_date(args.date, "--date") if args.date else None
        except (ConfigError, json.JSONDecodeError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        from pipelines.prefect.pipeline import ml_pipeline

        state = ml_pipeline.with_options(flow_run_name=args.run_id)(
            config=config.model_dump(mode="json"),
            run_id=args.run_id,
            faults=faults,
            webhook_url=args.webhook_url,
            logical_date=day.isoformat() if day else None,
            return_state=True,
        )
    else:
        from pipelines.prefect.workloads import workload

        state = workload.with_options(flow_run_name=args.run_id)(
            shape=args.shape,
            size=args.size,
            run_id=args.run_id,
            runs_root=args.runs_root,
            return_state=True,
        )
    summary = {
        "flow_run_id": str(state.state_details.flow_run_id),
        "state_type": state.type.value,
        "state_name": state.name,
        "run_id": args.run_id,
        "process_started": started,
        "process_ended": time.time(),
    }
    print(json.dumps(summary))
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main())
