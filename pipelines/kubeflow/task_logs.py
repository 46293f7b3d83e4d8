"""Each KFP task's log, kept per task and attempt under the run's local outputs.

What kfp.local 2.17.3 does with a task's output: ``SubprocessTaskHandler.run`` starts the
component process with stderr merged into stdout and ``print``s every line it reads, in the
thread that runs the task, to the launching process's stdout. Nothing is written to disk,
and the lines carry no task label: kfp.local only logs ``Executing task 'train'`` before and
``Task 'train' finished with status ...`` after (the loop iterations of ``train`` all say
``'train'``), and with two ParallelFor iterations running at once their lines interleave.

So the launcher (``run.py``) keeps them itself, without changing what kfp.local prints:

- ``keep_task_logs`` swaps in ``LoggedTaskHandler``, a subclass of kfp.local's handler whose
  ``run`` reads which task it is from the executor input in its own command (the task root,
  where KFP writes the task's outputs, and the ``run_id`` / ``candidate`` parameters), marks
  the current thread, then lets kfp.local run the task as usual;
- ``sys.stdout`` becomes ``ThreadTee``: every write still reaches the console, and a write
  from a marked thread also goes to that task attempt's log file.

A log lands next to the task's outputs in the pipeline root, beside ``executor_output.json``:
``<task root>/kfp-task.attempt-<n>.log`` (a ParallelFor iteration's task root is
``.../for-loop-2-iteration-<i>/train``). One JSON line per task execution goes to the run's
index, ``<kfp root>/runs/<run id>/tasks.jsonl``, which the adapter reads for
``orchbench logs``: ``key`` (``train[forest]``: the step and its loop item), ``attempt``,
``log``, ``task_root``, ``kfp_task``, ``kfp_status``, ``started_at``, ``ended_at``.

``attempt`` counts the executions of the key in the run, across re-submissions of the same
run id (a resume appends to the same index): the numbering shared_ml's durable counter gives
the step records, since each KFP execution of a component runs ``execute_step`` once.
"""

from __future__ import annotations

import io
import json
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from shared_ml.spec import task_key

INDEX_NAME = "tasks.jsonl"
LOG_NAME = "kfp-task.attempt-{attempt}.log"


def index_path(root: Path, run_id: str) -> Path:
    """The run's task log index under the KFP root (``$ORCHBENCH_HOME/var/kubeflow``)."""
    return root / "runs" / run_id / INDEX_NAME


class ThreadTee(io.TextIOBase):
    """A stdout that also copies each thread's writes to the file that thread is logging to."""

    def __init__(self, console: IO[str]) -> None:
        super().__init__()
        self.console = console
        self._current = threading.local()

    @contextmanager
    def logging_to(self, path: Path) -> Iterator[None]:
        """This thread's writes also go to ``path`` while inside the block."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", buffering=1) as log:
            self._current.file = log
            try:
                yield
            finally:
                self._current.file = None

    def write(self, text: str) -> int:
        written = self.console.write(text)
        log = getattr(self._current, "file", None)
        if log is not None:
            log.write(text)
        return written

    def flush(self) -> None:
        self.console.flush()

    def isatty(self) -> bool:
        return self.console.isatty()

    def fileno(self) -> int:
        return self.console.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.console, "encoding", "utf-8")


def execution_facts(full_command: list[str]) -> dict[str, Any]:
    """Which task a kfp.local command runs, from its ``--executor_input`` (KFP's own message:
    the output file sits in the task root) and ``--function_to_execute``."""

    def argument(flag: str) -> str | None:
        where = full_command.index(flag) + 1 if flag in full_command else len(full_command)
        return full_command[where] if where < len(full_command) else None

    executor_input = json.loads(argument("--executor_input") or "")
    parameters = executor_input.get("inputs", {}).get("parameterValues", {})
    task_root = Path(executor_input["outputs"]["outputFile"]).parent
    step = argument("--function_to_execute") or task_root.name
    return {
        "run_id": str(parameters.get("run_id", "")),
        "kfp_task": task_root.name,
        "key": task_key(step, parameters.get("candidate")),
        "task_root": str(task_root),
    }


class TaskLogIndex:
    """Numbers each key's executions in a run and appends one line per execution."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._counts: dict[str, Counter[str]] = {}

    def _count(self, run_id: str) -> Counter[str]:
        if run_id not in self._counts:  # a resume continues the run's earlier numbering
            path = index_path(self.root, run_id)
            lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
            self._counts[run_id] = Counter(json.loads(line)["key"] for line in lines if line)
        return self._counts[run_id]

    def next_attempt(self, run_id: str, key: str) -> int:
        with self._lock:
            counts = self._count(run_id)
            counts[key] += 1
            return counts[key]

    def append(self, entry: dict[str, Any]) -> None:
        path = index_path(self.root, entry["run_id"])
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")


@contextmanager
def keep_task_logs(root: Path) -> Iterator[TaskLogIndex]:
    """Inside the block, every task kfp.local runs has its log kept (see the module doc)."""
    from kfp.local import status, subprocess_task_handler

    kfp_handler = subprocess_task_handler.SubprocessTaskHandler
    index = TaskLogIndex(root)
    tee = ThreadTee(sys.stdout)

    class LoggedTaskHandler(kfp_handler):  # type: ignore[misc, valid-type]
        def run(self) -> status.Status:
            try:
                facts = execution_facts(self.full_command)
            except (KeyError, ValueError) as err:  # a command this module does not know
                print(f"warning: no task log kept ({type(err).__name__}: {err})", file=sys.stderr)
                return super().run()
            attempt = index.next_attempt(facts["run_id"], facts["key"])
            log = Path(facts["task_root"]) / LOG_NAME.format(attempt=attempt)
            started = datetime.now(UTC)
            outcome = status.Status.FAILURE
            try:
                with tee.logging_to(log):
                    outcome = super().run()
            finally:
                index.append(
                    {
                        **facts,
                        "attempt": attempt,
                        "log": str(log),
                        "kfp_status": outcome.name,
                        "started_at": started.isoformat(),
                        "ended_at": datetime.now(UTC).isoformat(),
                    }
                )
            return outcome

    # kfp.local looks the handler up on this module for every task (task_dispatcher).
    subprocess_task_handler.SubprocessTaskHandler = LoggedTaskHandler
    console, sys.stdout = sys.stdout, tee
    try:
        yield index
    finally:
        sys.stdout = console
        subprocess_task_handler.SubprocessTaskHandler = kfp_handler
