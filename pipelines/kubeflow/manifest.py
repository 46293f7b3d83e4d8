"""Compile the pipeline to its committed IR: ``python -m pipelines.kubeflow.manifest [--check]``.

The IR (``orchbench_ml.yaml`` next to this file) is what a KFP cluster runs and what the local
runner runs, so it is committed and a test fails when it is stale. Compilation is
deterministic: no defaults derived from the machine (config paths, dates) enter the IR, and
the compiler's output is a pure function of the sources and the kfp version. ``--check``
exits 1 when the committed file differs from a fresh compilation.
"""

import sys
import tempfile
from pathlib import Path

from kfp import compiler

from pipelines.kubeflow.ir import IR_PATH
from pipelines.kubeflow.pipeline import orchbench_ml
from pipelines.manifest_cli import write_or_check


def compile_ir() -> str:
    """The IR YAML as text, compiled from the current sources."""
    with tempfile.TemporaryDirectory(prefix="orchbench-kfp-compile-") as folder:
        target = Path(folder) / "orchbench_ml.yaml"
        compiler.Compiler().compile(pipeline_func=orchbench_ml, package_path=str(target))
        return target.read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    return write_or_check("kubeflow", IR_PATH, compile_ir, argv)


if __name__ == "__main__":
    sys.exit(main())
