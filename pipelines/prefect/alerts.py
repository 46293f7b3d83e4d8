"""Failure notifications from Prefect: the flow's ``on_failure`` hook posts to a webhook.

The message is Slack-compatible (built by ``shared_ml.notify``). The URL is the flow
parameter ``webhook_url`` when given, else ``$ORCHBENCH_WEBHOOK_URL`` in the environment of
the process running the flow (the worker's, for deployment runs). Neither set: nothing is
posted. A webhook that cannot be reached is logged, never raised: a notification must not
hide the failure it reports.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from shared_ml.config import ConfigError, validate_config
from shared_ml.notify import failure_payload, post_webhook
from shared_ml.spec import PIPELINE

WEBHOOK_ENV = "ORCHBENCH_WEBHOOK_URL"
logger = logging.getLogger("orchbench.prefect.notify")


def webhook_url_for(parameters: dict[str, Any]) -> str | None:
    return parameters.get("webhook_url") or os.environ.get(WEBHOOK_ENV) or None


def notify_failure(flow: Any, flow_run: Any, state: Any) -> None:
    from pipelines.prefect.records import failed_step, run_id_for

    parameters = dict(flow_run.parameters or {})
    url = webhook_url_for(parameters)
    if not url:
        return
    run_id = run_id_for(parameters.get("run_id"), flow_run.id)
    step, error = None, None
    try:
        config = validate_config(parameters.get("config") or {}, "flow parameter 'config'")
        step, error = failed_step(config.storage.runs_root, run_id)
    except ConfigError as err:
        error = str(err)
    payload = failure_payload(
        tool="prefect",
        pipeline=PIPELINE.name,
        run_id=run_id,
        step=step,
        error=error or state.message,
        link=_flow_run_link(flow_run.id),
    )
    try:
        status = post_webhook(url, payload)
        logger.info("failure notification posted to %s (HTTP %s)", url, status)
    except Exception as err:
        logger.error("failure notification to %s failed: %s", url, err)


def _flow_run_link(flow_run_id: Any) -> str | None:
    api = os.environ.get("PREFECT_API_URL", "")
    if not api.endswith("/api"):
        return None
    return f"{api.removesuffix('/api')}/runs/flow-run/{flow_run_id}"
