"""Failure notifications from Airflow: a Slack-compatible webhook, optionally e-mail.

The webhook URL is looked up when a task fails, in this order:

1. the ``webhook_url`` argument of the notifier;
2. the Airflow Variable ``orchbench_webhook_url`` (set it in the UI, with
   ``airflow variables set``, through the REST API, or as ``AIRFLOW_VAR_ORCHBENCH_WEBHOOK_URL``);
3. the environment variable ``ORCHBENCH_WEBHOOK_URL`` of the worker.

With none of them set the notifier logs and does nothing. E-mail goes out too when
``email_to`` (or the Variable ``orchbench_notify_email``) is set, through the SMTP
provider's ``SmtpNotifier`` and the ``smtp_default`` connection.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import BaseNotifier, Variable

from shared_ml.notify import failure_payload, post_webhook

WEBHOOK_VARIABLE = "orchbench_webhook_url"
WEBHOOK_ENV = "ORCHBENCH_WEBHOOK_URL"
EMAIL_VARIABLE = "orchbench_notify_email"


def _variable(key: str) -> str | None:
    try:
        return Variable.get(key, default=None) or None
    except Exception:  # no API/DB reachable (e.g. a bare unit test): fall back to env
        return None


class WebhookFailureNotifier(BaseNotifier):
    """Posts ``shared_ml.notify.failure_payload`` for the failed task to a webhook."""

    template_fields = ("webhook_url", "email_to")

    def __init__(
        self,
        webhook_url: str | None = None,
        email_to: str | list[str] | None = None,
        smtp_conn_id: str = "smtp_default",
    ) -> None:
        super().__init__()
        self.webhook_url = webhook_url
        self.email_to = email_to
        self.smtp_conn_id = smtp_conn_id

    def resolve_webhook_url(self) -> str | None:
        return self.webhook_url or _variable(WEBHOOK_VARIABLE) or os.environ.get(WEBHOOK_ENV)

    def payload(self, context: Any) -> dict[str, Any]:
        ti = context.get("ti") or context.get("task_instance")
        dag_run = context.get("dag_run")
        exception = context.get("exception")
        error = f"{type(exception).__name__}: {exception}" if exception else context.get("reason")
        return failure_payload(
            tool="airflow",
            pipeline=getattr(dag_run, "dag_id", None) or getattr(ti, "dag_id", "unknown"),
            run_id=getattr(dag_run, "run_id", None) or getattr(ti, "run_id", "unknown"),
            step=getattr(ti, "task_id", None),
            error=str(error) if error else None,
            link=getattr(ti, "log_url", None),
        )

    def notify(self, context: Any) -> None:
        payload = self.payload(context)
        url = self.resolve_webhook_url()
        if url:
            status = post_webhook(url, payload)
            self.log.info("failure notification posted to the webhook (HTTP %s)", status)
        else:
            self.log.info(
                "no webhook configured (Variable %s or $%s); not notifying",
                WEBHOOK_VARIABLE,
                WEBHOOK_ENV,
            )
        email_to = self.email_to or _variable(EMAIL_VARIABLE)
        if email_to:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            SmtpNotifier(
                to=email_to,
                smtp_conn_id=self.smtp_conn_id,
                subject=payload["text"],
                html_content=f"<pre>{payload['orchbench']['error']}</pre>",
            ).notify(context)
