"""Compile the pipeline to its committed IR: ``python -m pipelines.kubeflow.manifest [--check]``.

The IR (``orchbench_ml.yaml`` next to this file) is what a KFP cluster runs and what the local
runner runs, so it is committed and a test fails when it is stale. Compilation is
deterministic: no defaults derived from the machine (config paths, dates) enter the IR, and
the compiler's output is a pure function of the sources and the kfp version. ``--check``
exits 1 when the committed file differs from a fresh compilation.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from kfp import compiler

from pipelines.kubeflow.pipeline import orchbench_ml

IR_PATH = Path(__file__).resolve().parent / "orchbench_ml.yaml"


def compile_ir() -> str:
    """The IR YAML as text, compiled from the current sources."""
    with tempfile.TemporaryDirectory(prefix="orchbench-kfp-compile-") as folder:
        target = Path(folder) / "orchbench_ml.yaml"
        compiler.Compiler().compile(pipeline_func=orchbench_ml, package_path=str(target))
        return target.read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.kubeflow.manifest")
    parser.add_argument("--check", action="store_true", help="fail if the committed IR is stale")
    parser.add_argument("--output", type=Path, default=IR_PATH)
    args = parser.parse_args(argv)
    fresh = compile_ir()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else None
        if current != fresh:
            print(
                f"error: {args.output} is stale; run `python -m pipelines.kubeflow.manifest`",
                file=sys.stderr,
            )
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(fresh, encoding="utf-8")
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
