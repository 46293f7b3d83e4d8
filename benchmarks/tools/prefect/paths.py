"""Names and limits the Prefect adapter and its parts share."""

from __future__ import annotations

from typing import Literal

FLOW_NAME = "orchbench-ml"
DEPLOYMENT_NAME = "orchbench-ml"
WORKLOAD_FLOW_NAME = "orchbench-workload"
WORKLOAD_DEPLOYMENT_NAME = "orchbench-workload"
RUN_TIMEOUT_S = 600.0
Mode = Literal["deployment", "in-process"]
MODES: tuple[Mode, ...] = ("deployment", "in-process")
# What each mode measures, recorded beside every figure (results.json, run records).
EXECUTION_PATHS: dict[str, str] = {
    "deployment": "deployment + process worker (flow-run process, tasks in threads)",
    "in-process": "in-process flow (no deployment or worker; tasks in threads)",
    "cluster": "deployment + the cluster's worker (flow-run pod, tasks in threads)",
}


class PrefectRunError(RuntimeError):
    pass
