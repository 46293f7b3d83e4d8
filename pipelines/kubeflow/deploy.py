"""Submit the committed IR to a KFP cluster through ``kfp.Client(host=...)``.

    python -m pipelines.kubeflow.deploy --url http://127.0.0.1:8080 --config C --run-id R
        [--seed S] [--date YYYY-MM-DD] [--webhook-url URL] [--timeout 1800] [--schedule]
        [--no-wait] [--image REF]

It uploads the pipeline (once) and a pipeline version named after the IR's content hash (so
re-submitting an unchanged IR re-uses the version), creates a run and waits for it to finish.
Only with ``--schedule`` does it also make sure of the recurring run for the config's
``schedule`` (cron or preset, checked before any call: ``kfp_cron``): one recurring run named
``orchbench-ml-schedule`` in the experiment, kept when it already runs this pipeline version,
replaced when it runs another, never created twice (``ensure_recurring_run``). The run
processes ``--date``'s partition (default: today, resolved here); the recurring run's runs get
an empty ``logical_date`` and each step dates itself (KFP v2 expands no parameter macros, see
below). The last stdout line is a JSON summary. Exit 0 when the run succeeded, 1 when it did
not, 2 when the API cannot be reached or the arguments (the schedule among them) are wrong.

The IR is compiled with the local tag (``tasks.py`` ``SHARED_ML_IMAGE``); on EKS the nodes pull
from ECR (stack output ``images.kubeflow``). ``--image`` (default ``$ORCHBENCH_KFP_IMAGE``)
sets every step's image in the copy of the IR uploaded (``ir_with_image``).

Kept small on purpose: no KFP server can run on the development machines, so this code is
exercised by the end-to-end kind workflow (``orchbench run --tool kubeflow --target cluster
--url ...``); offline tests cover the argument building and the unreachable-host errors.

On a cluster each step runs in its own pod: relative ``storage`` roots resolve in each pod
under ``$ORCHBENCH_ARTIFACT_ROOT``, the object store that infra's Secret names
(``cluster_env.py``), so step records, the run record and the registry are shared there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from pipelines.kubeflow.ir import (
    IR_PATH,
    PIPELINE_DISPLAY_NAME,
    check_image_reference,
    ir_containers,
    ir_text_with_image,
    version_name,
)
from shared_ml.config import (
    SCHEDULE_PRESET_CRONS,
    SCHEDULE_PRESETS,
    parse_logical_date,
    validate_config,
)
from shared_ml.errors import ConfigError

RECURRING_RUN_NAME = f"{PIPELINE_DISPLAY_NAME}-schedule"
EXPERIMENT = "orchbench"
HEALTHZ_PATH = "/apis/v2beta1/healthz"
IMAGE_ENV = "ORCHBENCH_KFP_IMAGE"


class ClusterError(RuntimeError):
    """The KFP API cannot be used (unreachable, unhealthy, refused a request)."""


# KFP parses a recurring run's cron with robfig/cron v1 (scheduledworkflow/util/cron_schedule.go
# in kubeflow/pipelines), which has none of the L, W and # that croniter, so the config, accepts.
KFP_CRON_NAMES = {"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov"}
KFP_CRON_NAMES |= {"dec", "sun", "mon", "tue", "wed", "thu", "fri", "sat"}


def kfp_cron(schedule: str) -> str:
    """The config's schedule as KFP's recurring runs take it: six fields, seconds first
    (``kfp.Client.create_recurring_run``): ``"0 3 * * *"`` -> ``"0 0 3 * * *"``, and a preset
    as its cron (``"@daily"`` -> ``"0 0 0 * * *"``). ValueError when KFP could not read it."""
    cron = SCHEDULE_PRESET_CRONS.get(schedule.strip(), schedule)
    fields = cron.split()
    if len(fields) != 5:
        raise ValueError(
            f"schedule {schedule!r}: expected a 5-field cron expression or a preset "
            f"({', '.join(SCHEDULE_PRESETS)})"
        )
    for field in fields:
        for atom in re.split(r"[,/-]", field):
            if not (atom in ("*", "?") or atom.isdigit() or atom.lower() in KFP_CRON_NAMES):
                raise ValueError(
                    f"schedule {schedule!r}: KFP's cron cannot read the field {field!r} "
                    "(it takes numbers, *, ?, ranges, steps, lists and names; no L, W or #)"
                )
    return " ".join(["0", *fields])


def cluster_config_json(config_path: str | Path, seed: int | None = None) -> str:
    """The config as the pods should see it: validated here, but with storage paths left
    as written (relative roots then resolve in each pod under its ORCHBENCH_ARTIFACT_ROOT,
    never to this machine's paths)."""
    path = Path(config_path)
    if not path.is_file():
        raise ConfigError(str(path), "config file not found")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if seed is not None and isinstance(raw, dict):
        raw["seed"] = seed
    validate_config(raw, str(path))  # raises ConfigError naming the key
    return json.dumps(raw, sort_keys=True)


def run_parameters(
    config_json: str, run_id: str, seed: int, webhook_url: str, logical_date: str
) -> dict[str, Any]:
    """The pipeline parameters of one run (the IR's root inputs). ``logical_date`` is
    ``YYYY-MM-DD``, or empty for a step to use the day it runs."""
    return {
        "config_json": config_json,
        "run_id": run_id,
        "seed": seed,
        "logical_date": logical_date,
        "webhook_url": webhook_url,
    }


def check_reachable(url: str, timeout_s: float = 5.0) -> None:
    """Fail fast with a clear message: ``kfp.Client`` would retry for ~25 s, then raise a
    bare connection error."""
    if not url.startswith(("http://", "https://")):
        raise ClusterError(f"--url {url!r}: expected an http(s) URL of the KFP API")
    probe = url.rstrip("/") + HEALTHZ_PATH
    try:
        with urllib.request.urlopen(probe, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as err:
        raise ClusterError(
            f"KFP API at {url} answered {err.code} on {HEALTHZ_PATH}: is this the KFP API "
            "(ml-pipeline service or the UI's /apis proxy)?"
        ) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ClusterError(
            f"cannot reach the KFP API at {url}: {reason}. Is the cluster up and the API "
            "forwarded (e.g. kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80)?"
        ) from None


def display_name_filter(name: str) -> str:
    """A KFP API list filter on ``display_name`` (a field the v2beta1 list calls of runs,
    pipeline versions and recurring runs accept: backend/src/apiserver/model/job.go at
    kubeflow/pipelines 2.17.0 maps it to the jobs table's DisplayName)."""
    return json.dumps(
        {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": name}]}
    )


def ensure_recurring_run(
    client: Any,
    experiment_id: str,
    pipeline_id: str,
    version_id: str,
    cron: str,
    params: dict[str, Any],
) -> tuple[str, bool]:
    """The id of the one recurring run of this pipeline version in the experiment, and
    whether this call created it.

    Looked up by name first: one that already runs ``version_id`` is kept as it is; any
    other of that name (an older pipeline version, or a duplicate an earlier version of
    this module made on every submission) is deleted, so the name stays unique.
    """
    found = client.list_recurring_runs(
        experiment_id=experiment_id, filter=display_name_filter(RECURRING_RUN_NAME), page_size=100
    )
    kept = None
    for recurring in found.recurring_runs or []:
        reference = recurring.pipeline_version_reference
        same_version = reference is not None and reference.pipeline_version_id == version_id
        if kept is None and same_version:
            kept = recurring.recurring_run_id
        else:
            client.delete_recurring_run(recurring.recurring_run_id)
    if kept is not None:
        return kept, False
    # KFP v2 does not expand [[RunUUID]]-style macros in recurring-run parameters
    # (kubeflow/pipelines#12494): scheduled runs share one run id, so caching is off,
    # and get no date of their own: each step uses the day it runs.
    created = client.create_recurring_run(
        experiment_id=experiment_id,
        job_name=RECURRING_RUN_NAME,
        cron_expression=kfp_cron(cron),
        params={**params, "run_id": f"{PIPELINE_DISPLAY_NAME}-scheduled", "logical_date": ""},
        pipeline_id=pipeline_id,
        version_id=version_id,
        enable_caching=False,
        no_catchup=True,
    )
    return created.recurring_run_id, True


def _pipeline_and_version(client: Any, ir_path: Path) -> tuple[str, str]:
    ir_text = ir_path.read_text(encoding="utf-8")
    name = version_name(ir_text)
    pipeline_id = client.get_pipeline_id(PIPELINE_DISPLAY_NAME)
    if pipeline_id is None:
        pipeline_id = client.upload_pipeline(
            str(ir_path), pipeline_name=PIPELINE_DISPLAY_NAME
        ).pipeline_id
    existing = client.list_pipeline_versions(
        pipeline_id=pipeline_id, filter=display_name_filter(name)
    )
    for version in existing.pipeline_versions or []:
        return pipeline_id, version.pipeline_version_id
    version = client.upload_pipeline_version(
        str(ir_path), pipeline_version_name=name, pipeline_id=pipeline_id
    )
    return pipeline_id, version.pipeline_version_id


def submit(
    url: str,
    config_path: str | Path,
    run_id: str,
    *,
    seed: int | None = None,
    webhook_url: str = "",
    schedule: bool = False,
    wait: bool = True,
    timeout_s: int = 1800,
    ir_path: Path = IR_PATH,
    logical_date: date | None = None,
    image: str | None = None,
) -> dict[str, Any]:
    config_json = cluster_config_json(config_path, seed)
    run_date = (logical_date or datetime.now(UTC).date()).isoformat()
    config = json.loads(config_json)
    if schedule and not config.get("schedule"):
        raise ConfigError(
            f"{config_path}: schedule", "--schedule asks for its recurring run; the config has none"
        )
    if schedule:
        try:  # before any call: the one-off run is made first and would be left behind
            kfp_cron(config["schedule"])
        except ValueError as err:
            raise ConfigError(f"{config_path}: schedule", str(err)) from None
    uploaded = ir_path.read_text(encoding="utf-8")
    if image is not None:
        uploaded = ir_text_with_image(uploaded, image)
    check_reachable(url)
    import kfp
    import kfp_server_api

    # KFP's upload reads a pipeline file as YAML by its name's extension
    # (backend/src/apiserver/server/util.go ReadPipelineFile, kubeflow/pipelines 2.17.0).
    with tempfile.TemporaryDirectory(prefix="orchbench-kfp-ir-") as folder:
        upload_path = Path(folder) / ir_path.name
        upload_path.write_text(uploaded, encoding="utf-8")
        try:
            summary = _submit_with_client(
                kfp.Client(host=url),
                url,
                config,
                config_json,
                run_id,
                run_date,
                webhook_url,
                schedule,
                wait,
                timeout_s,
                upload_path,
            )
        except kfp_server_api.ApiException as err:
            raise ClusterError(
                f"KFP API at {url} refused a request: {err.status} {err.reason}: "
                f"{(err.body or '')[:500]}"
            ) from None
    summary["images"] = sorted(
        {c["image"] for c in ir_containers(list(yaml.safe_load_all(uploaded)))}
    )
    return summary


def _submit_with_client(
    client: Any,
    url: str,
    config: dict[str, Any],
    config_json: str,
    run_id: str,
    run_date: str,
    webhook_url: str,
    schedule: bool,
    wait: bool,
    timeout_s: int,
    ir_path: Path,
) -> dict[str, Any]:
    pipeline_id, version_id = _pipeline_and_version(client, ir_path)
    experiment = client.create_experiment(name=EXPERIMENT)
    params = run_parameters(config_json, run_id, int(config.get("seed", 42)), webhook_url, run_date)
    run = client.run_pipeline(
        experiment_id=experiment.experiment_id,
        job_name=run_id,
        params=params,
        pipeline_id=pipeline_id,
        version_id=version_id,
    )
    summary: dict[str, Any] = {
        "run_id": run_id,
        "kfp_run_id": run.run_id,
        "pipeline_id": pipeline_id,
        "version_id": version_id,
        "url": url,
        "logical_date": run_date,
        "status": "running",
    }
    if schedule:
        summary["recurring_run_id"], summary["recurring_run_created"] = ensure_recurring_run(
            client,
            experiment.experiment_id,
            pipeline_id,
            version_id,
            config["schedule"],
            params,
        )
    if wait:
        finished = client.wait_for_run_completion(run.run_id, timeout=timeout_s)
        state = str(finished.state or "").upper()
        summary["state"] = state
        summary["status"] = "success" if state == "SUCCEEDED" else "failed"
    return summary


def image_option(value: str) -> str:
    try:
        return check_image_reference(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.kubeflow.deploy")
    parser.add_argument("--url", required=True, help="KFP API, e.g. http://127.0.0.1:8080")
    parser.add_argument("--config", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--date", help="the run's logical date, YYYY-MM-DD (default: today)")
    parser.add_argument("--webhook-url", default="")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds to wait for the run")
    parser.add_argument(
        "--schedule",
        action="store_true",
        help="also keep the one recurring run of the config's cron schedule (created once)",
    )
    parser.add_argument("--no-wait", action="store_true")
    parser.add_argument(
        "--image",
        type=image_option,
        default=os.environ.get(IMAGE_ENV) or None,
        help=f"the image every step runs (default: ${IMAGE_ENV}, else the IR's compiled one)",
    )
    args = parser.parse_args(argv)
    try:
        logical_date = parse_logical_date(args.date, "--date") if args.date else None
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        summary = submit(
            args.url,
            args.config,
            args.run_id,
            seed=args.seed,
            webhook_url=args.webhook_url,
            schedule=args.schedule,
            wait=not args.no_wait,
            timeout_s=args.timeout,
            logical_date=logical_date,
            image=args.image,
        )
    except ConfigError as err:
        print(f"error: invalid config: {err}", file=sys.stderr)
        return 2
    except ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TimeoutError:
        print(f"error: the run did not finish within {args.timeout} s", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0 if summary["status"] in ("success", "running") else 1


if __name__ == "__main__":
    sys.exit(main())
