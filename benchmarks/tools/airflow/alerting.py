"""What the local Airflow services need for failure e-mails: the ``orchbench_smtp``
connection that ``pipelines/airflow/alerts.py`` sends through, made from orchbench's own
e-mail settings (``shared_ml.notify.email_settings``), so one set of variables configures
the alerts of every tool."""

from __future__ import annotations

import json
from typing import Any

from shared_ml.notify import email_settings

SMTP_CONN_ID = "orchbench_smtp"  # pipelines.airflow.alerts.SMTP_CONN_ID
SMTP_CONN_ENV = f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}"


def smtp_connection(env: dict[str, str]) -> dict[str, str]:
    """``{AIRFLOW_CONN_ORCHBENCH_SMTP: <connection as JSON>}`` from ``ORCHBENCH_SMTP_HOST``,
    ``ORCHBENCH_SMTP_PORT`` and ``ORCHBENCH_ALERT_EMAIL_FROM`` in ``env``: a plain SMTP relay
    (no TLS, no login), as ``shared_ml.notify`` uses. Empty when e-mail alerts are not
    configured, or when ``AIRFLOW_CONN_ORCHBENCH_SMTP`` is set already (define a relay that
    needs TLS or a login that way, or in the UI). A half-set configuration raises
    ValueError naming the missing variable."""
    if env.get(SMTP_CONN_ENV):
        return {}
    mail = email_settings(env)
    if mail is None:
        return {}
    connection: dict[str, Any] = {
        "conn_type": "smtp",
        "host": mail["host"],
        "port": mail["port"],
        "extra": {
            "from_email": mail["sender"],
            "disable_tls": True,
            "disable_ssl": True,
            "timeout": 10,
            "retry_limit": 1,
        },
    }
    return {SMTP_CONN_ENV: json.dumps(connection)}


def alert_summary(env: dict[str, str]) -> str | None:
    """A line saying where failure e-mails go, for ``orchbench airflow up``; None when
    e-mail alerts are not configured."""
    mail = email_settings(env)
    if mail is None:
        return None
    return (
        f"failure e-mails to {', '.join(mail['to'])} via {mail['host']}:{mail['port']} "
        f"(connection {SMTP_CONN_ID})"
    )
