"""The one command line of every tool's generated manifest (``pipelines/<tool>/manifest.py``):
``python -m pipelines.<tool>.manifest [PATH]`` writes it, ``--check`` fails when the file at
PATH differs from a fresh build. ``make manifests`` and ``make check-manifests`` call each
tool alike. Standard library only: every tool's environment imports it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def write_or_check(
    tool: str,
    default_path: Path,
    build: Callable[[], str],
    argv: list[str] | None = None,
    validate: Callable[[str], str] | None = None,
) -> int:
    """Exit code 0 written or fresh, 1 stale (the message on stderr). ``validate`` checks a
    fresh file further and returns what to add to the "up to date" line."""
    module = f"pipelines.{tool}.manifest"
    parser = argparse.ArgumentParser(prog=f"python -m {module}")
    parser.add_argument("path", nargs="?", type=Path, default=default_path)
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    fresh = build()
    if not args.check:
        args.path.write_text(fresh, encoding="utf-8")
        print(f"wrote {args.path}")
        return 0
    current = args.path.read_text(encoding="utf-8") if args.path.exists() else None
    if current != fresh:
        print(f"error: {args.path} is stale; run `python -m {module}`", file=sys.stderr)
        return 1
    print(f"{args.path} is up to date" + (validate(current) if validate else ""))
    return 0
