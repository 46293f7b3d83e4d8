"""Every tool folder names the same job with the same file (issue 13, point 9).

Reads the file system only: no orchestrator is imported, so this runs in the core env.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
TOOLS = ("airflow", "prefect", "kubeflow")

# The job of each file every tool folder has.
SHARED_MODULES = {
    "pipeline.py": "the ML pipeline in the tool's idiom (DAG, flow, KFP pipeline)",
    "tasks.py": "what the pipeline's step tasks are built from",
    "alerts.py": "the failure notifications: a Slack-compatible webhook and an e-mail",
    "workloads.py": "the no-op chain / fan-out scaling workloads",
    "manifest.py": "builds the tool's committed, generated manifest and checks it is fresh",
    "metadata.py": "the run's metadata in the tool's own store (asset event, artifacts, KFP metrics)",
}

# Any other module, per tool, with the reason it exists there only. Keep this small: a
# module that does a job another tool also does belongs under the shared name above.
EXTRA_MODULES = {
    "airflow": {
        "__init__.py": "package marker",
    },
    "prefect": {
        "__init__.py": "package marker",
        "deploy.py": "registers the work pool and the deployment on a Prefect server",
        "run.py": "runs a flow in-process against a Prefect server (the adapter's entry point)",
        "records.py": "run ids and the run record written at the end of a flow run",
    },
    "kubeflow": {
        "__init__.py": "package marker",
        "deploy.py": "submits the committed IR to a KFP cluster",
        "ir.py": "the committed IR's path, and its uploaded copies (step image, version name)",
        "run.py": "runs the committed IR with kfp.local (the adapter's entry point)",
        "task_runtime.py": "importable code the lightweight components call once running",
        "task_logs.py": "keeps each local task attempt's log (kfp.local only prints it)",
        "cluster_env.py": "the env every step pod needs on a cluster (home, artifact store)",
    },
}


def modules(tool: str) -> set[str]:
    return {path.name for path in (PIPELINES / tool).glob("*.py")}


@pytest.mark.parametrize("tool", TOOLS)
def test_every_tool_folder_has_the_shared_modules(tool: str) -> None:
    missing = set(SHARED_MODULES) - modules(tool)
    assert not missing, f"pipelines/{tool}/ lacks {sorted(missing)}"


@pytest.mark.parametrize("tool", TOOLS)
def test_other_modules_are_allowlisted_with_a_reason(tool: str) -> None:
    unexpected = modules(tool) - set(SHARED_MODULES) - set(EXTRA_MODULES[tool])
    assert not unexpected, (
        f"pipelines/{tool}/ has {sorted(unexpected)}: use one of {sorted(SHARED_MODULES)} "
        f"for a job every tool has, or add it to EXTRA_MODULES[{tool!r}] with its reason"
    )


def test_the_allowlist_names_only_existing_modules_and_gives_reasons() -> None:
    packages = {p.name for p in PIPELINES.iterdir() if (p / "__init__.py").is_file()}
    assert set(EXTRA_MODULES) == set(TOOLS) == packages
    for tool, extra in EXTRA_MODULES.items():
        assert not set(extra) & set(SHARED_MODULES)
        assert set(extra) <= modules(tool), f"stale allowlist entries for {tool}"
        assert all(reason.strip() for reason in extra.values())
