"""``results.json``: a versioned, schema-validated record of one benchmark invocation.

The schema lives beside this module (``schema/results.schema.json``). ``write_results``
validates before writing and refuses an invalid document, naming the offending path;
the file is written atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from benchmarks.harness.figures import FIGURES, SCENARIOS
from benchmarks.harness.noise import aa_rows
from benchmarks.harness.setup_cost import Unavailable, venv_python
from benchmarks.harness.stats import fit_line, summarize
from shared_ml.artifacts import atomic_write_text

# 2: p95 and the bootstrap CI in every summary; 3: per tool and profile, the execution
# path and the metadata database (tools.<tool>.execution_paths)
RESULTS_SCHEMA_VERSION = 3
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "results.schema.json"


class InvalidResults(ValueError):
    """The results document does not match the schema; the message names the path."""


@cache
def results_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validate_results(results: dict[str, Any]) -> None:
    version = results.get("schema_version") if isinstance(results, dict) else None
    if version != RESULTS_SCHEMA_VERSION:
        raise InvalidResults(
            f"results.json is invalid at schema_version: it is {version!r}, this orchbench "
            f"reads version {RESULTS_SCHEMA_VERSION}; run the benchmark again to rewrite it"
        )
    validator = jsonschema.Draft202012Validator(
        results_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(results), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        path = "/".join(str(p) for p in first.absolute_path) or "<root>"
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        raise InvalidResults(f"results.json is invalid at {path}: {first.message}{more}")
    for tool, entry in results["tools"].items():
        unlabelled = sorted(set(entry["profiles"]) - set(entry["execution_paths"]))
        if unlabelled:
            raise InvalidResults(
                f"results.json is invalid at tools/{tool}/execution_paths: no execution path "
                f"for profile(s) {', '.join(unlabelled)} that it ran"
            )


def write_results(results: dict[str, Any], path: Path) -> Path:
    """Validate, then write atomically. An invalid document is never written."""
    validate_results(results)
    atomic_write_text(path, json.dumps(results, indent=2, sort_keys=False) + "\n")
    return path


def load_results(path: Path) -> dict[str, Any]:
    results = json.loads(Path(path).read_text(encoding="utf-8"))
    validate_results(results)
    return results


# --- what sits beside the numbers --------------------------------------------------------
# The machine's identity and the code revision live in benchmarks.harness.machine.


def tool_versions(tool: str, packages: list[str]) -> dict[str, str]:
    """Versions of Python and the tool's packages, read inside the tool's environment."""
    wanted = ["orchbench", "scikit-learn", "numpy", "pandas", *packages]
    code = (
        "import json, platform; from importlib import metadata as m\n"
        "out = {'python': platform.python_version()}\n"
        f"for d in {wanted!r}:\n"
        "    try: out[d] = m.version(d)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    try:
        python = venv_python(tool)
    except Unavailable as err:
        return {"error": str(err)}
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-300:]}
    return json.loads(done.stdout)


# --- derived figures -----------------------------------------------------------------------
def _params_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def summaries(observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[float]] = defaultdict(list)
    for o in observations:
        key = (o["figure"], o["tool"], o["profile"], o["execution_model"], _params_key(o["params"]))
        groups[key].append(o["value"])
    rows = []
    for (figure, tool, profile, model, params), values in groups.items():
        rows.append(
            {
                "figure": figure,
                "tool": tool,
                "profile": profile,
                "execution_model": model,
                "params": json.loads(params),
                **summarize(values).as_dict(),
            }
        )
    order = list(FIGURES)
    rows.sort(
        key=lambda r: (
            order.index(r["figure"]) if r["figure"] in order else len(order),
            r["tool"],
            r["profile"],
            r["params"].get("shape", ""),
            r["params"].get("size", 0),
        )
    )
    return rows


def scaling_fits(observations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Least-squares line of end to end against size, per tool, profile and shape, over
    every repetition's points (so the spread of the points is in R²)."""
    points: dict[tuple, list[tuple[int, float]]] = defaultdict(list)
    for o in observations:
        if o["figure"] == "scaling.end_to_end_s":
            key = (o["tool"], o["profile"], o["execution_model"], o["params"]["shape"])
            points[key].append((o["params"]["size"], o["value"]))
    fits = []
    for (tool, profile, model, shape), pts in sorted(points.items()):
        sizes = sorted({x for x, _ in pts})
        if len(sizes) < 2:
            continue
        fit = fit_line([x for x, _ in pts], [y for _, y in pts])
        fits.append(
            {
                "tool": tool,
                "profile": profile,
                "execution_model": model,
                "shape": shape,
                "slope_s_per_task": fit.slope,
                "intercept_s": fit.intercept,
                "r2": fit.r2,
                "slope_ci_low": fit.slope_ci_low,
                "slope_ci_high": fit.slope_ci_high,
                "n_points": fit.n_points,
                "sizes": sizes,
            }
        )
    return fits


def build_results(
    *,
    plan: dict[str, Any],
    collected: Any,
    created_at: str,
    duration_s: float,
    machine: dict[str, Any],
    versions: dict[str, dict[str, str]],
    pipeline_config: dict[str, Any],
    command: str,
) -> dict[str, Any]:
    from benchmarks.report.feature_matrix import matrix_as_data
    from benchmarks.report.recommend import recommendations

    results: dict[str, Any] = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "kind": "orchbench-benchmark-results",
        "created_at": created_at,
        "duration_s": duration_s,
        "command": command,
        "plan": plan,
        "machine": machine,
        "versions": versions,
        "pipeline_config": pipeline_config,
        "figures": {key: f.as_dict() for key, f in FIGURES.items()},
        "scenarios": {
            k: v
            for k, v in SCENARIOS.items()
            if k in plan["scenarios"] or k in plan.get("skipped_scenarios", [])
        },
        "tools": collected.tools,
        "observations": collected.observations,
        "outcomes": collected.outcomes,
        "summaries": summaries(collected.observations),
        "fits": scaling_fits(collected.observations),
        "noise_floor": aa_rows(collected.observations),
        "timelines": collected.timelines,
        "feature_matrix": matrix_as_data(),
        "recommendations": [],
        "notes": list(plan.get("notes", [])),
        "log": collected.log,
        "adhoc_comparison": list(getattr(collected, "adhoc", [])),
        "sessions": list(getattr(collected, "sessions", [])),
    }
    results["recommendations"] = recommendations(results)
    return results
