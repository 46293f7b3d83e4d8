"""One local Prefect install: the state its supervisor recorded, the deployment it
registers and how to log in to its UI."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.environments import REPO_ROOT, tool_bin
from benchmarks.services.supervisor import ProcessRecord, SupervisedState, tail


class ServiceError(RuntimeError):
    """A service could not be started, reached or stopped; the message says which."""


ProcessEntry = ProcessRecord  # one process as the state file records it


@dataclass
class ServicesState:
    url: str
    port: int
    home: str
    profile: str
    pool: str
    database: str
    processes: list[ProcessEntry] = field(default_factory=list)
    cold_start_s: float | None = None
    worker_ready_s: float | None = None
    deployment_id: str | None = None
    database_url: str | None = None  # raw (may hold a password): the state file is 0600
    database_kind: str = "sqlite"  # "postgres": a PostgreSQL these services started

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def details(self) -> dict[str, Any]:
        """Everything but the processes: what the supervisor keeps beside them."""
        return {k: v for k, v in asdict(self).items() if k != "processes"}

    @classmethod
    def from_supervised(cls, supervised: SupervisedState) -> ServicesState:
        return cls(**supervised.details, processes=list(supervised.processes))


AUTH_ENV = "PREFECT_SERVER_API_AUTH_STRING"


def ui_login(environ: dict[str, str] | None = None) -> str:
    """How to log in to the UI of a server started with this environment."""
    env = os.environ if environ is None else environ
    if env.get(AUTH_ENV):
        return f"basic auth: the user:password in ${AUTH_ENV}"
    return "no login: the local server has no authentication"


def register_deployment(
    home: Path, config: str, pool: str, env: dict[str, str], timeout_s: float
) -> str:
    """Register the work pool and the orchbench-ml deployment (``pipelines.prefect.deploy``
    in the prefect environment); the deployment's id."""
    log = home / "logs" / "deploy.log"
    command = [str(tool_bin("prefect", "python")), "-m", "pipelines.prefect.deploy"]
    command += ["--config", config, "--pool", pool]
    try:
        done = subprocess.run(
            command,
            env=env,
            cwd=env.get("ORCHBENCH_HOME", str(REPO_ROOT)),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ServiceError(f"registering the deployment took over {timeout_s:.0f} s") from None
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        raise ServiceError(f"registering the deployment failed; see {log}:\n{tail(log)}")
    return json.loads(done.stdout.strip().splitlines()[-1])["deployment_id"]
