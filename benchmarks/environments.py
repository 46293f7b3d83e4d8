"""Where each tool's Python environment lives, and how to run a command in it.

The core environment (this one) has no orchestrator installed. Each tool runs in its
own environment under ``.venvs/<tool>`` (made by ``make envs``), reached only through a
subprocess or the tool's HTTP API.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class EnvironmentMissing(RuntimeError):
    pass


def venvs_dir() -> Path:
    return Path(os.environ.get("ORCHBENCH_VENVS", REPO_ROOT / ".venvs"))


def tool_bin(tool: str, program: str = "python") -> Path:
    """Path of ``program`` in ``tool``'s environment; a clear error if it is missing."""
    path = venvs_dir() / tool / "bin" / program
    if not path.exists():
        raise EnvironmentMissing(
            f"{path} not found: the {tool!r} environment is not installed. Run `make envs` "
            f"(or `UV_PROJECT_ENVIRONMENT=.venvs/{tool} uv sync --frozen --extra {tool} --extra dev`)."
        )
    return path


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a tool subprocess: ORCHBENCH_HOME pinned to the repo by default,
    so relative storage paths in configs mean the same folder in every process."""
    env = dict(os.environ)
    env.setdefault("ORCHBENCH_HOME", str(REPO_ROOT))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    if extra:
        env.update(extra)
    return env


@contextmanager
def orchbench_home_set(path: str | None) -> Iterator[None]:
    """Resolve configs in this process against ``path`` as ``ORCHBENCH_HOME``, as the
    tool's own processes will (``None``: leave it as it is)."""
    if not path:
        yield
        return
    previous = os.environ.get("ORCHBENCH_HOME")
    os.environ["ORCHBENCH_HOME"] = path
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("ORCHBENCH_HOME", None)
        else:
            os.environ["ORCHBENCH_HOME"] = previous
