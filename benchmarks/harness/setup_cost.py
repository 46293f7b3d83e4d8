"""Setup-cost measurements that need no running service: install, size, import, code, cluster.

Each reaches a tool only through files and subprocesses in the tool's own environment.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path

import psutil

from benchmarks.environments import REPO_ROOT, venvs_dir


class Unavailable(Exception):
    """This figure cannot be measured here; the message says why."""


# Per tool: its environment under .venvs, the extra to install, the package to import,
# and where its pipeline code lives. A tool missing here gets the conventional defaults.
@dataclass(frozen=True)
class ToolLayout:
    venv: str
    extra: str | None
    import_name: str
    pipeline_sources: tuple[str, ...]


LAYOUTS: dict[str, ToolLayout] = {
    "local": ToolLayout("core", None, "shared_ml", ("shared_ml/runner.py",)),
    "airflow": ToolLayout("airflow", "airflow", "airflow", ("pipelines/airflow",)),
    "prefect": ToolLayout("prefect", "prefect", "prefect", ("pipelines/prefect",)),
    "kubeflow": ToolLayout("kubeflow", "kubeflow", "kfp", ("pipelines/kubeflow",)),
}


def layout(tool: str) -> ToolLayout:
    return LAYOUTS.get(tool, ToolLayout(tool, tool, tool, (f"pipelines/{tool}",)))


def bytecode_missing(tool: str) -> str | None:
    """Why ``tool``'s environment would compile its package from source in every process,
    or None. Installers that compile bytecode (pip by default, uv with
    --compile-bytecode, the images) leave a .pyc beside each module; without it, and
    with PYTHONDONTWRITEBYTECODE set, every task process pays the compile again, which no
    production install does, so the figures would not be the tool's."""
    package = layout(tool).import_name
    init = next(
        (venvs_dir() / layout(tool).venv).glob(f"lib/python*/site-packages/{package}/__init__.py"),
        None,
    )
    if init is None or Path(importlib.util.cache_from_source(str(init))).exists():
        return None  # not installed is reported where the tool is started
    return (
        f"{venvs_dir() / layout(tool).venv}: {package} has no compiled bytecode, so every "
        "process would compile it from source; run `make envs` (it installs with "
        "--compile-bytecode, as the images do)"
    )


def directory_size_mb(path: Path) -> float:
    """Apparent size of every regular file under ``path`` (symlinks not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                stat = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            if not os.path.islink(os.path.join(root, name)):
                total += stat.st_size
    return total / 1e6


def venv_python(tool: str) -> Path:
    path = venvs_dir() / layout(tool).venv / "bin" / "python"
    if not path.exists():
        raise Unavailable(f"{path} not found: the {tool} environment is not installed (make envs)")
    return path


def venv_size_mb(tool: str) -> float:
    return directory_size_mb(venv_python(tool).parent.parent)


def uv_binary() -> str:
    candidate = venvs_dir() / "uv" / "bin" / "uv"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("uv")
    if not found:
        raise Unavailable("uv not found (.venvs/uv/bin/uv or on PATH)")
    return found


def install_environment(tool: str, scratch: Path, timeout_s: float = 900) -> tuple[float, float]:
    """``uv sync`` the tool's runtime environment into an empty folder from the committed
    lock file, offline (the uv cache must be warm, as after ``make envs``).
    Returns (seconds, size in MB); the folder is removed afterwards."""
    target = scratch / f"env-{tool}"
    shutil.rmtree(target, ignore_errors=True)
    extra = layout(tool).extra
    # Compiled, as `make envs` and the images install it (see bytecode_missing).
    command = [uv_binary(), "sync", "--frozen", "--offline", "--quiet", "--compile-bytecode"]
    command += ["--python", _base_python()]
    if extra:
        command += ["--extra", extra]
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(target)}
    started = time.perf_counter()
    done = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
    )
    seconds = time.perf_counter() - started
    try:
        if done.returncode != 0:
            raise Unavailable(
                f"uv sync for {tool} failed (is the uv cache warm? run make envs): "
                f"{done.stderr.strip()[-500:]}"
            )
        return seconds, directory_size_mb(target)
    finally:
        shutil.rmtree(target, ignore_errors=True)


def _base_python() -> str:
    """The interpreter the environments were built from (not this venv's shim)."""
    return getattr(sys, "_base_executable", sys.executable)


def import_seconds(tool: str, timeout_s: float = 300) -> float:
    """Cumulative import time of the tool's top-level package, from -X importtime."""
    package = layout(tool).import_name
    done = subprocess.run(
        [str(venv_python(tool)), "-X", "importtime", "-c", f"import {package}"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    if done.returncode != 0:
        raise Unavailable(f"`import {package}` failed in {tool}'s env: {done.stderr[-300:]}")
    return parse_importtime(done.stderr, package)


def parse_importtime(stderr: str, package: str) -> float:
    """Seconds from the ``-X importtime`` line of the top-level ``package``."""
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[2].rstrip() == f" {package}":
            return int(parts[1]) / 1e6
    raise Unavailable(f"no import time line for {package!r} in the -X importtime output")


def authoring_lines(tool: str) -> tuple[int, list[str]]:
    """Non-blank, non-comment, non-docstring lines of the tool's pipeline .py files."""
    files: list[Path] = []
    for source in layout(tool).pipeline_sources:
        path = REPO_ROOT / source
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
    if not files:
        raise Unavailable(f"no pipeline code for {tool} under {layout(tool).pipeline_sources}")
    return sum(code_lines(p.read_text(encoding="utf-8")) for p in files), [
        str(p.relative_to(REPO_ROOT)) for p in files
    ]


def code_lines(source: str) -> int:
    """Lines holding code: not blank, not only a comment, not part of a docstring."""
    docstring_lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                docstring_lines.update(range(body[0].lineno, (body[0].end_lineno or 0) + 1))
    lines: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in skip or token.type == tokenize.ENDMARKER:
            continue
        lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstring_lines)


def cluster_footprint(stack: str = "kind", timeout_s: float = 120) -> dict[str, dict]:
    """Per system, the totals computed by infra/footprint.py, read in a subprocess (the
    benchmarks never import infra). Uses .venvs/infra when present, else this Python."""
    if not (REPO_ROOT / "infra" / "footprint.py").exists():
        raise Unavailable("infra/footprint.py does not exist")
    python = venvs_dir() / "infra" / "bin" / "python"
    code = (
        "import json; from infra.footprint import footprint_for_stack; "
        f"print(json.dumps({{k: v.to_dict() for k, v in footprint_for_stack({stack!r}).items()}}))"
    )
    done = subprocess.run(
        [str(python) if python.exists() else sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    if done.returncode != 0:
        raise Unavailable(f"infra/footprint.py failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def process_tree_footprint(pids: list[int]) -> tuple[float, int]:
    """(PSS in MB, process count) over ``pids`` and all their descendants."""
    seen: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
        except psutil.NoSuchProcess:
            continue
        for process in [root, *root.children(recursive=True)]:
            seen.setdefault(process.pid, process)
    if not seen:
        raise Unavailable(f"none of the service processes {pids} is alive")
    total = 0
    for process in seen.values():
        try:
            total += process.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        except psutil.AccessDenied as err:
            raise Unavailable(f"cannot read PSS of pid {process.pid}: {err}") from None
    return total / 1e6, len(seen)
