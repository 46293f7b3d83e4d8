"""Failure notifications from KFP: the exit handler's component, which posts to a webhook
and sends an e-mail.

``pipeline.py`` runs ``notify_on_failure`` as the ``dsl.ExitHandler``'s exit task, so it runs
after every run, failed or not, and receives the run's final status. Its body is one call to
``task_runtime.notify_if_failed``, which (unless the run succeeded) posts a Slack-compatible
message (built by ``shared_ml.notify``) when a ``webhook_url`` was given, and e-mails the same
alert through ``shared_ml.notify.send_email`` when ``ORCHBENCH_SMTP_HOST`` and
``ORCHBENCH_ALERT_EMAIL_TO`` are set in the task's environment. As in ``tasks``, the import is
inside the function: KFP serialises only its source into the IR.
"""

# No `from __future__ import annotations`: KFP reads the real annotation objects.
from kfp import dsl

from pipelines.kubeflow.tasks import component


@component
def notify_on_failure(
    config_json: str, run_id: str, webhook_url: str, status: dsl.PipelineTaskFinalStatus
) -> str:
    """Exit handler: alert by webhook and e-mail when the pipeline did not succeed."""
    from pipelines.kubeflow.task_runtime import notify_if_failed

    return notify_if_failed(config_json, run_id, webhook_url, status.state, status.error_message)
