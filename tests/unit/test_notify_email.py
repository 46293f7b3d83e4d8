"""Alert e-mails through a real SMTP server on 127.0.0.1, and their settings' errors."""

from __future__ import annotations

import pytest

from shared_ml.notify import (
    ALERT_TO_ENV,
    SMTP_HOST_ENV,
    SMTP_PORT_ENV,
    email_settings,
    failure_payload,
    send_email,
)
from tests.smtp import SmtpServer


def test_a_failure_email_arrives_with_the_run_and_the_error() -> None:
    payload = failure_payload(
        tool="local", pipeline="orchbench-ml", run_id="r-1", step="validate", error="column x: bad"
    )
    with SmtpServer() as server:
        env = {
            SMTP_HOST_ENV: server.host,
            SMTP_PORT_ENV: str(server.port),
            ALERT_TO_ENV: "a@x, b@x",
        }
        settings = email_settings(env)
        assert settings is not None
        send_email(payload, settings)
        (message,) = server.wait_for(1)
        assert server.recipients() == [["a@x", "b@x"]]
    assert message["Subject"] == "local: orchbench-ml run r-1 failed in step `validate`"
    body = message.get_content()
    assert "run_id: r-1" in body and "column x: bad" in body


def test_no_settings_means_no_email_and_half_settings_are_named() -> None:
    assert email_settings({}) is None
    with pytest.raises(ValueError, match=ALERT_TO_ENV):
        email_settings({SMTP_HOST_ENV: "127.0.0.1"})
    with pytest.raises(ValueError, match=SMTP_HOST_ENV):
        email_settings({ALERT_TO_ENV: "a@x"})
    with pytest.raises(ValueError, match=f"{SMTP_PORT_ENV}='smtp'"):
        email_settings({SMTP_HOST_ENV: "h", ALERT_TO_ENV: "a@x", SMTP_PORT_ENV: "smtp"})
