"""Failure notifications from Airflow: a Slack-compatible webhook, and e-mail through the
SMTP provider's ``SmtpNotifier``. Both are task ``on_failure_callback`` notifiers: they run
in the task process once a task has failed for good (not on a try that will be retried).

The webhook URL is looked up when a task fails, in this order:

1. the ``webhook_url`` argument of the notifier;
2. the Airflow Variable ``orchbench_webhook_url`` (set it in the UI, with
   ``airflow variables set``, through the REST API, or as ``AIRFLOW_VAR_ORCHBENCH_WEBHOOK_URL``);
3. the environment variable ``ORCHBENCH_WEBHOOK_URL`` of the worker.

E-mail goes to the ``to`` argument, else the Variable ``orchbench_notify_email``, else
``$ORCHBENCH_ALERT_EMAIL_TO`` (comma-separated), through the Airflow connection
``orchbench_smtp``. ``orchbench airflow up`` defines that connection (as the environment
variable ``AIRFLOW_CONN_ORCHBENCH_SMTP``) from ``ORCHBENCH_SMTP_HOST``/``_PORT`` and
``ORCHBENCH_ALERT_EMAIL_FROM``; it can also be made in the UI (Admin > Connections).
With no address, or no webhook, that channel logs and does nothing.
"""

from __future__ import annotations

import html
import os
from typing import Any

from airflow.sdk import BaseNotifier, Variable

from shared_ml.notify import ALERT_TO_ENV, failure_payload, post_webhook

WEBHOOK_VARIABLE = "orchbench_webhook_url"
WEBHOOK_ENV = "ORCHBENCH_WEBHOOK_URL"
EMAIL_VARIABLE = "orchbench_notify_email"
SMTP_CONN_ID = "orchbench_smtp"


def _variable(key: str) -> str | None:
    try:
        return Variable.get(key, default=None) or None
    except Exception:  # no API/DB reachable (e.g. a bare unit test): fall back to env
        return None


def failure_context_payload(context: Any) -> dict[str, Any]:
    """``shared_ml.notify.failure_payload`` for the failed task of ``context``."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    exception = context.get("exception")
    error = f"{type(exception).__name__}: {exception}" if exception else context.get("reason")
    return failure_payload(
        tool="airflow",
        pipeline=getattr(dag_run, "dag_id", None) or getattr(ti, "dag_id", "unknown"),
        run_id=getattr(dag_run, "run_id", None) or getattr(ti, "run_id", "unknown"),
        step=_task_key(ti),
        error=str(error) if error else None,
        link=getattr(ti, "log_url", None),
    )


def _task_key(ti: Any) -> str | None:
    """``train[forest]`` for a mapped instance labelled with its candidate, else the id."""
    task_id = getattr(ti, "task_id", None)
    map_index = getattr(ti, "map_index", -1)
    if task_id is None or map_index is None or map_index < 0:
        return task_id
    label = getattr(ti, "rendered_map_index", None) or map_index
    return f"{task_id}[{label}]"


class WebhookFailureNotifier(BaseNotifier):
    """Posts ``shared_ml.notify.failure_payload`` for the failed task to a webhook."""

    template_fields = ("webhook_url",)

    def __init__(self, webhook_url: str | None = None) -> None:
        super().__init__()
        self.webhook_url = webhook_url

    def resolve_webhook_url(self) -> str | None:
        return self.webhook_url or _variable(WEBHOOK_VARIABLE) or os.environ.get(WEBHOOK_ENV)

    def notify(self, context: Any) -> None:
        url = self.resolve_webhook_url()
        if not url:
            self.log.info(
                "no webhook configured (Variable %s or $%s); not notifying",
                WEBHOOK_VARIABLE,
                WEBHOOK_ENV,
            )
            return
        status = post_webhook(url, failure_context_payload(context))
        self.log.info("failure notification posted to the webhook (HTTP %s)", status)


class EmailFailureNotifier(BaseNotifier):
    """E-mails the same facts as the webhook (run, step, error, log link) through the SMTP
    provider's ``SmtpNotifier`` and the ``orchbench_smtp`` connection."""

    template_fields = ("to",)

    def __init__(self, to: str | list[str] | None = None, smtp_conn_id: str = SMTP_CONN_ID) -> None:
        super().__init__()
        self.to = to
        self.smtp_conn_id = smtp_conn_id

    def recipients(self) -> list[str]:
        to = self.to or _variable(EMAIL_VARIABLE) or os.environ.get(ALERT_TO_ENV, "")
        addresses = to.split(",") if isinstance(to, str) else list(to)
        return [a.strip() for a in addresses if a.strip()]

    def notify(self, context: Any) -> None:
        to = self.recipients()
        if not to:
            self.log.info(
                "no alert e-mail address (Variable %s or $%s); not e-mailing",
                EMAIL_VARIABLE,
                ALERT_TO_ENV,
            )
            return
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        payload = failure_context_payload(context)
        facts = payload["orchbench"]
        rows = "".join(
            f"<tr><th align='left'>{k}</th><td>{html.escape(str(facts.get(k) or '-'))}</td></tr>"
            for k in ("tool", "pipeline", "run_id", "step")
        )
        ti = context.get("ti") or context.get("task_instance")
        log_url = getattr(ti, "log_url", None)
        body = f"<table>{rows}</table><pre>{html.escape(facts['error'])}</pre>" + (
            f"<p><a href='{html.escape(log_url)}'>Task log</a></p>" if log_url else ""
        )
        # Subject and body are given, so SmtpNotifier renders no template of its own (an
        # error text with "{{" stays as it is); the sender is the connection's from_email.
        SmtpNotifier(
            to=to,
            smtp_conn_id=self.smtp_conn_id,
            subject=payload["text"].removeprefix(":red_circle: "),
            html_content=body,
        ).notify(context)
        self.log.info(
            "failure e-mail sent to %s via connection %s", ", ".join(to), self.smtp_conn_id
        )
