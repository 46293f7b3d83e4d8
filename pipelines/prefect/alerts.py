"""Alerts from Prefect's flow-run state hooks: a Slack-compatible webhook and an e-mail.

- ``notify_failure`` is the flow's ``on_failure`` hook: it runs in the flow-run process
  when the flow run ends FAILED (a step failed for good);
- ``notify_crash`` is its ``on_crashed`` hook: a flow run CRASHES when its process dies
  (SIGKILL, out of memory) or its infrastructure fails. The dead process cannot run a
  hook, so Prefect 3.9 runs it from the outside: the process worker sees the non-zero exit,
  sets the flow run CRASHED, then starts a fresh process that loads the flow from the
  deployment's entrypoint and calls its ``on_crashed`` hooks with the worker's environment
  (``prefect.runner._flow_run_executor`` and ``_workspace_hook_runner``). A flow run in a
  plain process that dies by SIGKILL has no one watching: no hook runs and no state is
  set; a SIGTERM lets the engine set CRASHED and run the hook itself.

Where the alert goes (the environment of the process running the hook; the worker's for
deployment runs):

- webhook: the flow parameter ``webhook_url`` when given, else ``$ORCHBENCH_WEBHOOK_URL``;
- e-mail: ``shared_ml.notify.email_settings()`` (``$ORCHBENCH_SMTP_HOST``, ``..._PORT``,
  ``$ORCHBENCH_ALERT_EMAIL_TO``, ``..._FROM``).

Neither configured: nothing is sent. A channel that fails is logged to the flow run's
logs, never raised: an alert must not hide the failure it reports.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from shared_ml.config import ConfigError, validate_config
from shared_ml.notify import email_settings, failure_payload, post_webhook, send_email
from shared_ml.spec import PIPELINE

TOOL = "prefect"
WEBHOOK_ENV = "ORCHBENCH_WEBHOOK_URL"


def webhook_url_for(parameters: dict[str, Any]) -> str | None:
    return parameters.get("webhook_url") or os.environ.get(WEBHOOK_ENV) or None


def notify_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_failure``: the failed step and its error, from the step records."""
    from pipelines.prefect.records import failed_step

    send_alerts(flow, flow_run, state, failed_step)


def notify_crash(flow: Any, flow_run: Any, state: Any) -> None:
    """``on_crashed``: the steps that were running when the process died, and the
    reason Prefect gives (e.g. ``Process exited with status code: -9``)."""
    from pipelines.prefect.records import running_steps

    def what_crashed(runs_root: str, run_id: str) -> tuple[str | None, str | None]:
        running = running_steps(runs_root, run_id)
        during = f" while running {', '.join(running)}" if running else ""
        reason = state.message or "no message from Prefect"
        return (running[0] if running else None), f"flow run CRASHED{during}: {reason}"

    send_alerts(flow, flow_run, state, what_crashed)


def send_alerts(
    flow: Any,
    flow_run: Any,
    state: Any,
    what_failed: Callable[[str, str], tuple[str | None, str | None]],
) -> None:
    """Post and e-mail one payload; ``what_failed(runs_root, run_id)`` names the step
    and the error from the step records."""
    from pipelines.prefect.records import run_id_for

    logger = _run_logger(flow, flow_run)
    parameters = dict(flow_run.parameters or {})
    run_id = run_id_for(parameters.get("run_id"), flow_run.id)
    step, error = None, None
    try:
        config = validate_config(parameters.get("config") or {}, "flow parameter 'config'")
        step, error = what_failed(config.storage.runs_root, run_id)
    except (ConfigError, OSError, ValueError) as err:
        error = f"{state.message or state.name}; step records unreadable: {err}"
    payload = failure_payload(
        tool=TOOL,
        pipeline=PIPELINE.name,
        run_id=run_id,
        step=step,
        error=error or state.message,
        link=flow_run_link(flow_run.id),
    )
    url = webhook_url_for(parameters)
    if url:
        try:
            status = post_webhook(url, payload)
            logger.info("%s alert posted to %s (HTTP %s)", state.name, url, status)
        except Exception as err:
            logger.error("%s alert to %s failed: %s", state.name, url, err)
    try:
        settings = email_settings()
        if settings:
            send_email(payload, settings)
            logger.info(
                "%s alert e-mailed to %s via %s:%s",
                state.name,
                ", ".join(settings["to"]),
                settings["host"],
                settings["port"],
            )
    except Exception as err:  # a half-set configuration, an unreachable server
        logger.error("%s alert e-mail failed: %s", state.name, err)


def flow_run_link(flow_run_id: Any) -> str | None:
    """The flow run's page in the UI the API serves (``.../api`` -> ``.../runs/...``)."""
    api = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    if not api.endswith("/api"):
        return None
    return f"{api.removesuffix('/api')}/runs/flow-run/{flow_run_id}"


def _run_logger(flow: Any, flow_run: Any) -> logging.Logger | logging.LoggerAdapter:
    """The flow run's own logger, so what the hook did shows in the run's logs."""
    try:
        from prefect.logging.loggers import flow_run_logger

        return flow_run_logger(flow_run, flow)
    except Exception:
        return logging.getLogger("orchbench.prefect.alerts")
