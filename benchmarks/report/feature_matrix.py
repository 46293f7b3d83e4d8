"""What each tool can do, as far as this repository's tests prove it.

A cell is "proven" only when it names tests that exist (``tests/benchmarks/
test_feature_matrix.py`` parses the test files and fails otherwise) and those tests
observe the behaviour itself (a run that fired, branches that overlapped in the tool's
own timestamps), not its configuration; a configuration-only check is "not_tested" with
the check named. So the matrix cannot claim more than the tests show. "pending" cells name the tests being written
for them; until those exist the report says "not yet proven", never "yes".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["proven", "pending", "unsupported", "not_tested"]
MATRIX_TOOLS = ("airflow", "prefect", "kubeflow")


@dataclass(frozen=True)
class Feature:
    key: str
    name: str
    question: str


@dataclass(frozen=True)
class Cell:
    status: Status
    summary: str
    tests: tuple[str, ...] = ()


FEATURES = (
    Feature(
        "parallel",
        "Parallel branches",
        "Do one run's candidate branches (train[c] -> evaluate[c]) run at the same time?",
    ),
    Feature("scheduled", "Scheduled trigger", "Does a cron schedule start the pipeline?"),
    Feature("manual", "Manual trigger", "Can a user or API call start a run with parameters?"),
    Feature("event", "Event trigger", "Does an event (new data, an asset update) start a run?"),
    Feature("retries", "Retries", "Is a transient step failure retried per the spec's policy?"),
    Feature(
        "non_retryable",
        "Non-retryable errors",
        "Does a NonRetryableError fail the step at once, without retries?",
    ),
    Feature("resume", "Resume from failure", "Can a failed run continue without redoing work?"),
    Feature(
        "backfill",
        "Backfill",
        "Do runs for past dates each process their own partition, idempotently?",
    ),
    Feature("notifications", "Notifications", "Is a failure posted to a webhook?"),
    Feature("ui", "UI", "Does the tool serve a UI showing the runs?"),
    Feature(
        "kubernetes",
        "Kubernetes-native execution",
        "Does the infra run each task or run as Kubernetes pods/jobs?",
    ),
)


AF = "tests/airflow/"
PF = "tests/prefect/"
KF = "tests/kubeflow/"
INFRA = "tests/infra/test_components.py::"

# Cells name the tests that prove them (existence checked by tests/benchmarks/
# test_feature_matrix.py; whether they pass is the tool suites' job). "pending" is for
# tests still being written: the report then says "not yet proven".
MATRIX: dict[tuple[str, str], Cell] = {
    # --- Airflow ---------------------------------------------------------------------
    ("parallel", "airflow"): Cell(
        "proven",
        "dynamic task mapping (expand) over the candidates; in one run every branch started "
        "before any ended (Airflow's task-instance timestamps)",
        (AF + "test_pipeline_runs.py::test_candidate_branches_overlap_in_time",),
    ),
    ("scheduled", "airflow"): Cell(
        "proven",
        "the real scheduler made and ran the run of the schedule's latest interval, whose "
        "data interval is the run's partition",
        (AF + "test_triggers.py::test_the_schedule_fires_for_its_latest_interval",),
    ),
    ("manual", "airflow"): Cell(
        "proven",
        "runs triggered through the REST API / CLI with params complete and match the "
        "plain-Python baseline",
        (
            AF + "test_triggers.py::test_cli_trigger_with_a_seed_param",
            AF + "test_pipeline_runs.py::test_adapter_run_matches_the_plain_python_baseline",
        ),
    ),
    ("event", "airflow"): Cell(
        "proven",
        "an asset event starts a run (data-aware scheduling)",
        (AF + "test_triggers.py::test_input_asset_event_starts_a_run",),
    ),
    ("retries", "airflow"): Cell(
        "proven",
        "a transient fault is retried; try 2 succeeds",
        (AF + "test_pipeline_runs.py::test_transient_fault_is_retried_and_try_2_succeeds",),
    ),
    ("non_retryable", "airflow"): Cell(
        "proven",
        "a NonRetryableError fails the task at once (AirflowFailException)",
        (AF + "test_pipeline_runs.py::test_non_retryable_fault_fails_without_retry",),
    ),
    ("resume", "airflow"): Cell(
        "proven",
        "clearing the failed task resumes the run without re-running upstream tasks",
        (
            AF + "test_pipeline_runs.py::"
            "test_clearing_the_failed_task_resumes_without_rerunning_upstream",
        ),
    ),
    ("backfill", "airflow"): Cell(
        "proven",
        "an Airflow backfill runs each date on its own partition, equal to the plain runner; "
        "re-running it adds no registry version and no artifact",
        (
            AF + "test_triggers.py::"
            "test_backfill_by_partition_matches_the_plain_runner_and_reruns_change_nothing",
        ),
    ),
    ("notifications", "airflow"): Cell(
        "proven",
        "a failure posts the payload to a webhook",
        (AF + "test_pipeline_runs.py::test_failure_notification_reaches_the_webhook",),
    ),
    ("ui", "airflow"): Cell(
        "proven",
        "a headless Chromium logs in to the real api-server's UI and finds a run, its tasks "
        "and the mapped candidate branches by name",
        (AF + "test_ui.py::test_log_in_and_find_the_runs_tasks_and_mapped_candidates",),
    ),
    ("kubernetes", "airflow"): Cell(
        "not_tested",
        "configured, not observed on a cluster: the pod template validates strictly and infra "
        "ships it (static checks, Pulumi mocks); the exact KubernetesExecutor pod commands of "
        "two tasks ran on this machine and reported success to a real api-server, without a "
        "kube API; real pods only in the kind end-to-end workflow",
        (
            AF + "test_pod_template.py::test_pod_template_validates_strictly",
            INFRA + "test_airflow_ships_the_pipeline_pod_template_when_present",
            AF + "test_pod_rehearsal.py::test_ingest_then_validate_as_kubernetes_executor_pods",
        ),
    ),
    # --- Prefect ---------------------------------------------------------------------
    ("parallel", "prefect"): Cell(
        "proven",
        "branches submitted to a thread-pool task runner; in one run every branch started "
        "before any ended (Prefect's task-run timestamps)",
        (PF + "test_pipeline.py::test_candidate_branches_overlap_in_prefect_task_run_times",),
    ),
    ("scheduled", "prefect"): Cell(
        "proven",
        "a deployment schedule fired on the real server; the run completed with its "
        "scheduled date as the partition",
        (
            PF + "test_deployments.py::"
            "test_a_scheduled_run_fires_and_its_record_carries_its_scheduled_date",
        ),
    ),
    ("manual", "prefect"): Cell(
        "proven",
        "a manual deployment run through the prefect CLI completes",
        (PF + "test_deployments.py::test_manual_run_through_the_prefect_cli_completes",),
    ),
    ("event", "prefect"): Cell(
        "proven",
        "an event sent through the API starts a deployment run",
        (
            PF + "test_deployments.py::test_deployment_has_the_data_updated_event_trigger",
            PF + "test_deployments.py::test_event_through_the_api_starts_a_deployment_run",
        ),
    ),
    ("retries", "prefect"): Cell(
        "proven",
        "a transient fault is retried by task retries and succeeds",
        (PF + "test_recovery.py::test_transient_fault_is_retried_and_succeeds",),
    ),
    ("non_retryable", "prefect"): Cell(
        "proven",
        "a NonRetryableError is not retried (retry condition)",
        (PF + "test_recovery.py::test_non_retryable_fault_is_not_retried",),
    ),
    ("resume", "prefect"): Cell(
        "proven",
        "a fixed re-run executes only the failed step and its downstream (task cache)",
        (
            PF
            + "test_recovery.py::test_fixed_rerun_executes_only_the_failed_step_and_its_downstream",
        ),
    ),
    ("backfill", "prefect"): Cell(
        "proven",
        "one deployment run per past date, scheduled at that date on its partition; "
        "re-running the backfill adds no registry version",
        (
            PF + "test_deployments.py::"
            "test_backfill_is_one_deployment_run_per_date_scheduled_at_that_date",
            PF + "test_deployments.py::"
            "test_backfill_runs_each_past_date_once_and_is_idempotent_in_the_registry",
        ),
    ),
    ("notifications", "prefect"): Cell(
        "proven",
        "a failure posts the payload to a webhook (on_failure hook)",
        (PF + "test_recovery.py::test_webhook_receives_the_failure_notification",),
    ),
    ("ui", "prefect"): Cell(
        "proven",
        "a headless Chromium opens a finished run's page on the real server's UI and finds "
        "its task runs, the mapped candidate branches included",
        (PF + "test_ui.py::test_flow_run_page_lists_the_task_runs_with_the_mapped_candidates",),
    ),
    ("kubernetes", "prefect"): Cell(
        "not_tested",
        "configured, not observed on a cluster: the real server accepts a Kubernetes work pool "
        "with the committed job template, whose jobs run the shared_ml image; the exact "
        "containers of three flow-run Jobs ran on this machine and completed, sharing only the "
        "object store, without a kube API; real jobs only in the kind end-to-end workflow",
        (
            PF + "test_deployments.py::"
            "test_kubernetes_work_pool_with_the_committed_template_is_accepted_by_the_server",
            PF + "test_k8s.py::test_job_runs_the_shared_ml_image_as_non_root_with_resources",
            PF + "test_pod_rehearsal.py::test_flow_runs_as_kubernetes_jobs_share_only_the_store",
        ),
    ),
    # --- Kubeflow Pipelines ----------------------------------------------------------
    ("parallel", "kubeflow"): Cell(
        "proven",
        "dsl.ParallelFor over the candidates with dsl.Collected (IR); the local runner ran "
        "two of the three branches at once (kfp.local caps its pool at two); on a cluster "
        "each iteration is its own pod",
        (
            KF
            + "test_ir.py::test_the_candidate_branches_are_a_parallel_for_over_preprocess_output",
            KF + "test_local_run.py::test_kfp_local_runs_at_most_two_branches_at_once",
        ),
    ),
    ("scheduled", "kubeflow"): Cell(
        "not_tested",
        "recurring runs exist only on a cluster; here only the cron conversion to KFP's "
        "six-field form is checked, and no run is seen to fire",
        (KF + "test_cluster.py::test_cron_gets_the_seconds_field_kfp_expects",),
    ),
    ("manual", "kubeflow"): Cell(
        "proven",
        "a local run (kfp.local) completes and matches the baseline",
        (KF + "test_local_run.py::test_default_config_gives_the_baseline_results",),
    ),
    ("event", "kubeflow"): Cell(
        "unsupported",
        "KFP has no built-in event triggers; runs are started by API calls or recurring runs",
    ),
    ("retries", "kubeflow"): Cell(
        "proven",
        "set_retry retries a transient fault in every branch, locally",
        (KF + "test_local_run.py::test_a_transient_fault_is_retried_in_every_branch",),
    ),
    ("non_retryable", "kubeflow"): Cell(
        "unsupported",
        "KFP retries every failure: a NonRetryableError still consumes every retry",
        (KF + "test_local_run.py::test_non_retryable_error_still_consumes_every_kfp_retry",),
    ),
    ("resume", "kubeflow"): Cell(
        "proven",
        "a resume re-executes only the failed step and its downstream (local caching)",
        (
            KF
            + "test_local_run.py::test_resume_re_executes_only_the_failed_step_and_its_downstream",
        ),
    ),
    ("backfill", "kubeflow"): Cell(
        "unsupported",
        "not supported locally (kfp.local has no scheduler; `orchbench backfill` exits 2); "
        "on a cluster, a recurring run with catchup backfills (docs/kubeflow.md)",
        (KF + "test_commands.py::test_backfill_is_not_supported_locally",),
    ),
    ("notifications", "kubeflow"): Cell(
        "proven",
        "an exit handler task posts the failure to a webhook",
        (KF + "test_local_run.py::test_exit_handler_posts_the_failure_to_the_webhook",),
    ),
    ("ui", "kubeflow"): Cell("not_tested", "the KFP UI exists only on a cluster"),
    ("kubernetes", "kubeflow"): Cell(
        "not_tested",
        "configured, not observed on a cluster: every step of the IR runs the pinned "
        "shared_ml image and infra applies the KFP manifests (static checks, Pulumi mocks); "
        "the IR's exact commands of two step pods ran on this machine, sharing only the "
        "object store, without Argo or a kube API; real pods only on a cluster",
        (
            KF + "test_ir.py::test_every_image_is_the_pinned_shared_ml_image",
            INFRA + "test_kubeflow_applies_cluster_scoped_resources_first",
            KF + "test_pod_rehearsal.py::test_ingest_then_validate_as_kfp_step_pods",
        ),
    ),
}


def matrix_as_data() -> dict[str, Any]:
    return {
        "features": [f.__dict__ for f in FEATURES],
        "tools": list(MATRIX_TOOLS),
        "cells": [
            {
                "feature": feature,
                "tool": tool,
                "status": cell.status,
                "summary": cell.summary,
                "tests": list(cell.tests),
            }
            for (feature, tool), cell in MATRIX.items()
        ],
    }
