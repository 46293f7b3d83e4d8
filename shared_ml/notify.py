"""Failure notifications: one Slack-compatible payload, posted the same way by every tool.

Each tool calls this from its own mechanism (an Airflow notifier, a Prefect on_failure
hook, a KFP ExitHandler step). E-mail goes the same way where the tool has no SMTP
mechanism of its own. Uses only the standard library so it runs anywhere.
"""

from __future__ import annotations

import json
import os
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage
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


# E-mail alerts, where a tool has no SMTP mechanism of its own (Prefect's hook, KFP's exit
# handler; Airflow uses its SMTP provider's notifier). Configured by environment, so no
# address or server is baked into an image or a compiled pipeline.
SMTP_HOST_ENV = "ORCHBENCH_SMTP_HOST"
SMTP_PORT_ENV = "ORCHBENCH_SMTP_PORT"  # 25 by default
ALERT_TO_ENV = "ORCHBENCH_ALERT_EMAIL_TO"  # comma-separated
ALERT_FROM_ENV = "ORCHBENCH_ALERT_EMAIL_FROM"
DEFAULT_FROM = "orchbench@localhost"


def email_settings(environ: dict[str, str] | None = None) -> dict[str, Any] | None:
    """``{host, port, to, sender}`` when e-mail alerts are configured, else None.
    A half-configured setting (a host without recipients, a bad port) is an error that
    names the variable, not a silently dropped alert."""
    env = dict(os.environ if environ is None else environ)
    host, to = env.get(SMTP_HOST_ENV, "").strip(), env.get(ALERT_TO_ENV, "").strip()
    if not host and not to:
        return None
    if not host or not to:
        missing = SMTP_HOST_ENV if not host else ALERT_TO_ENV
        raise ValueError(f"e-mail alerts: ${missing} is not set (both it and the other are needed)")
    raw_port = env.get(SMTP_PORT_ENV, "25").strip() or "25"
    if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
        raise ValueError(f"${SMTP_PORT_ENV}={raw_port!r}: expected a TCP port number")
    recipients = [a.strip() for a in to.split(",") if a.strip()]
    return {
        "host": host,
        "port": int(raw_port),
        "to": recipients,
        "sender": env.get(ALERT_FROM_ENV, "").strip() or DEFAULT_FROM,
    }


def failure_email(payload: dict[str, Any], sender: str, to: list[str]) -> EmailMessage:
    """The e-mail for a ``failure_payload``: its headline as subject, the error as body."""
    facts = payload["orchbench"]
    message = EmailMessage()
    message["Subject"] = payload["text"].removeprefix(":red_circle: ")
    message["From"] = sender
    message["To"] = ", ".join(to)
    lines = [f"{k}: {facts.get(k) or '-'}" for k in ("tool", "pipeline", "run_id", "step")]
    message.set_content("\n".join([*lines, "", facts.get("error") or "no error message", ""]))
    return message


def send_email(payload: dict[str, Any], settings: dict[str, Any], timeout_s: float = 10.0) -> None:
    """Send the failure e-mail through ``settings`` (``email_settings()``)."""
    message = failure_email(payload, settings["sender"], settings["to"])
    with smtplib.SMTP(settings["host"], settings["port"], timeout=timeout_s) as smtp:
        smtp.send_message(message)
