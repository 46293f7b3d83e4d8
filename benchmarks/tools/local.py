"""The plain-Python baseline, behind the same adapter interface as the tools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.environments import tool_env
from benchmarks.tools.base import ToolAdapter
from shared_ml.records import RunRecord, load_run_record
from shared_ml.runner import new_run_id


class LocalAdapter(ToolAdapter):
    name = "local"
    execution_model = "in-process"

    def run_pipeline(
        self,
        config_path: Path,
        *,
        seed: int | None = None,
        run_id: str | None = None,
        faults: dict[str, dict[str, Any]] | None = None,
    ) -> RunRecord:
        # A fresh process, as every other tool gets, so imports and warm-up count too.
        run_id = run_id or new_run_id("local")
        command = [
            sys.executable,
            "-m",
            "shared_ml",
            "--config",
            str(config_path),
            "--run-id",
            run_id,
        ]
        if seed is not None:
            command += ["--seed", str(seed)]
        env = tool_env({"ORCHBENCH_FAULTS": json.dumps(faults)} if faults else None)
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"local run failed to start: {done.stderr.strip()[-2000:]}")
        return load_run_record(done.stdout.strip().splitlines()[-1])
