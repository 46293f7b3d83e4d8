"""The report prints each tool's knob table and task concurrency from results.json."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmarks.report.render import render_report
from benchmarks.tools.profiles import knob_table, profiles_of, report_entry, task_concurrency

FIXTURE = Path(__file__).parent / "fixtures" / "results.json"


def results_with_settings() -> dict:
    """The report fixture, with what the harness records about each tool's settings for
    the profiles it has (the fixture's local has a made-up "tuned": dropped) and a
    kubeflow entry, whose concurrency kfp.local fixes."""
    results = copy.deepcopy(json.loads(FIXTURE.read_text(encoding="utf-8")))
    results["tools"]["kubeflow"] = {"profiles": {"defaults": "defaults"}}
    for tool, entry in results["tools"].items():
        ran = [p for p in entry["profiles"] if p in profiles_of(tool)]
        entry["profiles"] = {p: entry["profiles"][p] for p in ran}
        entry.update(report_entry(tool, ran))
    for key in ("observations", "outcomes", "summaries", "fits", "timelines", "noise_floor"):
        results[key] = [r for r in results.get(key, []) if r["profile"] in profiles_of(r["tool"])]
    return results


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    markdown, html = render_report(results_with_settings(), tmp_path_factory.mktemp("report"))
    return markdown.read_text(encoding="utf-8"), html.read_text(encoding="utf-8")


def test_each_tool_with_knobs_has_its_table_with_reason_and_doc(rendered) -> None:
    markdown, html = rendered
    for tool in ("airflow", "prefect"):
        assert f"### {tool} (`benchmarks/tools/{tool}/profiles.yaml`)" in markdown
        rows = knob_table(tool, ["defaults", "tuned"])
        assert any(r["profile"] == "tuned" for r in rows)
        for r in rows:
            cells = f"| {r['profile']} | `{r['knob']}` | `{r['value']}` | {r['reason']} |"
            assert cells in markdown, cells
            if r["doc"]:
                assert f"[doc]({r['doc']})" in markdown
                assert r["doc"] in html
            assert f"<code>{r['knob']}</code>" in html
    # The labelled variant did not run, so its knob is not in the table.
    assert "ORCHBENCH_AIRFLOW_PRELOAD" not in markdown


def test_tools_without_knobs_say_why_and_have_no_tuned_column(rendered) -> None:
    markdown, _ = rendered
    for tool in ("local", "kubeflow"):
        assert f"### {tool} (" in markdown
        assert "No tuning knob" in markdown.split(f"### {tool} (")[1].split("###")[0]
        assert f"{tool} (tuned)" not in markdown
    assert "airflow (tuned)" in markdown  # a tool with knobs keeps its column


def test_the_concurrency_of_every_tool_is_stated(rendered) -> None:
    markdown, html = rendered
    assert "## Tool settings and concurrency" in markdown
    assert "<h2>Tool settings and concurrency</h2>" in html
    shared = task_concurrency("airflow")
    assert f"{shared} at once: local, airflow, prefect" in markdown
    assert f"{task_concurrency('kubeflow')} at once: kubeflow" in markdown
    assert (
        f"AIRFLOW__CORE__PARALLELISM={shared}" in markdown and "ORCHBENCH_TASK_CONCURRENCY" in html
    )


def test_results_without_settings_still_render(tmp_path: Path) -> None:
    results = json.loads(FIXTURE.read_text(encoding="utf-8"))  # written before the files
    markdown, _ = render_report(results, tmp_path)
    assert "not recorded in this results.json" in markdown.read_text(encoding="utf-8")


def test_a_tool_and_its_postgres_label_share_one_table(tmp_path: Path) -> None:
    """airflow ran as shipped on SQLite, airflow+postgres ran both profiles: one table
    from the one profiles file, holding the tuned knobs, and which label ran what."""
    results = results_with_settings()
    results["tools"]["airflow"]["profiles"].pop("tuned", None)
    results["tools"]["airflow"].update(report_entry("airflow", ["defaults"]))
    results["tools"]["airflow+postgres"] = {
        "profiles": {"defaults": "defaults", "tuned": "tuned"},
        **report_entry("airflow", ["defaults", "tuned"]),
    }
    markdown, html = (p.read_text(encoding="utf-8") for p in render_report(results, tmp_path))
    assert markdown.count("(`benchmarks/tools/airflow/profiles.yaml`)") == 1
    assert "### airflow, airflow+postgres (`benchmarks/tools/airflow/profiles.yaml`)" in markdown
    section = markdown.split("### airflow, airflow+postgres (")[1].split("###")[0]
    assert "Profiles run: airflow: defaults; airflow+postgres: defaults, tuned." in section
    tuned = [r for r in knob_table("airflow", ["defaults", "tuned"]) if r["profile"] == "tuned"]
    assert tuned and all(f"| tuned | `{r['knob']}` |" in section for r in tuned)
    assert html.count("<h3>airflow") == 1
