"""Failure notifications: one Slack-compatible payload, posted the same way by every tool.

Each tool calls this from its own mechanism (an Airflow notifier, a Prefect on_failure
hook, a KFP ExitHandler step). Uses only the standard library so it runs anywhere.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def failure_payload(
    *,
    tool: str,
    pipeline: str,
    run_id: str,
    step: str | None,
    error: str | None,
    link: str | None = None,
) -> dict[str, Any]:
    """A payload Slack incoming webhooks accept (``text`` plus ``blocks``)."""
    where = f"step `{step}`" if step else "the pipeline"
    text = f":red_circle: {tool}: {pipeline} run {run_id} failed in {where}"
    detail = (error or "no error message").strip()[:1500]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*\n```{detail}```"}},
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"tool={tool} pipeline={pipeline} run_id={run_id}"}
            ],
        },
    ]
    if link:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{link}|Open run>"}})
    return {
        "text": text,
        "blocks": blocks,
        # Machine-readable copy, for receivers that are not Slack.
        "orchbench": {
            "tool": tool,
            "pipeline": pipeline,
            "run_id": run_id,
            "step": step,
            "error": detail,
        },
    }


def post_webhook(url: str, payload: dict[str, Any], timeout_s: float = 10.0) -> int:
    """POST ``payload`` as JSON; return the HTTP status. Raises on network errors."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"webhook URL {url!r}: expected an http(s) URL")
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return response.status
