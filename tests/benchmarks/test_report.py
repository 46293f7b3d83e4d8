"""The report renders from a results.json alone, self-contained, with nothing dropped."""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from benchmarks.report.figure_tables import figure_tables, fmt
from benchmarks.report.recommend import recommendations
from benchmarks.report.render import render_report

FIXTURE = Path(__file__).parent / "fixtures" / "results.json"


@pytest.fixture(scope="module")
def results() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def rendered(results: dict, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    out = tmp_path_factory.mktemp("report")
    markdown, html = render_report(results, out)
    return markdown.read_text(), html.read_text(), out


def test_html_is_self_contained(rendered: tuple[str, str, Path]) -> None:
    _, html, _ = rendered
    assert not re.search(r"""(src|href)=["']https?://""", html)
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 3  # bars, scaling, timeline


def test_markdown_links_figures_that_exist(rendered: tuple[str, str, Path]) -> None:
    markdown, _, out = rendered
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert links
    for link in links:
        assert (out / link).is_file(), link


def test_every_tool_figure_and_definition_appears(results: dict, rendered) -> None:
    markdown, html, _ = rendered
    for text in (markdown, html):
        for tool in results["plan"]["tools"]:
            assert tool in text
        assert "From the tool accepting the trigger to the tool recording" in text  # a definition
        assert "Task hand-off" in text  # a phase of the one timestamp scheme
        assert "fixture CPU" in text  # the machine
        assert "not_supported" in text and "no restart_services" in text


def test_the_script_comparison_has_its_own_table(rendered) -> None:
    markdown, html, _ = rendered
    for text in (markdown, html):
        assert "Pipelines vs ad-hoc scripts" in text
        assert "duplicate registry entries" in text and "failure recorded" in text
        assert "fixture kill on the script" in text
    # Two repetitions: the script's work lost differs, so the cell shows the spread.
    assert "| process SIGKILLed mid-training | ad-hoc script | no | 1 | 0.550 s [0.500-0.600]" in (
        markdown
    )


def test_execution_models_never_share_a_table(results: dict) -> None:
    tables = figure_tables(results, "latency")
    assert [t["model"] for t in tables] == ["in-process", "process-per-task"]
    in_process = tables[0]["columns"]
    assert all(c.split()[0] in ("local", "prefect") for c in in_process)
    assert all(c.startswith("airflow") for c in tables[1]["columns"])


def test_each_tool_and_profile_shows_its_execution_path_and_database(
    results: dict, rendered
) -> None:
    markdown, html, _ = rendered
    for tool, entry in results["tools"].items():
        for profile, path in entry["execution_paths"].items():
            row = f"| {tool} | {profile} | {path['execution_path']} | {path['database']} |"
            assert row in markdown
            cells = (tool, profile, path["execution_path"], path["database"])
            assert "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>" in html


def test_defaults_and_tuned_both_shown(rendered) -> None:
    markdown, _, _ = rendered
    assert "airflow (defaults)" in markdown and "airflow (tuned)" in markdown


def test_which_tool_when_follows_the_numbers(results: dict) -> None:
    by_rule = {r["rule"]: r for r in recommendations(results)}
    # Fixture: prefect's numbers are lower than airflow's everywhere, with intervals that
    # do not overlap; local is the baseline and never recommended. Setup figures are the
    # tools' own, compared across execution models; run-time ones only within one, and
    # the fixture's prefect (in-process) and airflow (process-per-task) share none.
    assert by_rule["fastest cold start"]["tools"] == ["prefect"]
    assert by_rule["smallest idle footprint"]["tools"] == ["prefect"]
    for rule in ("fastest pipeline end to end", "lowest per-task cost in a chain"):
        assert by_rule[rule]["tools"] == [], rule
        assert "execution model" in by_rule[rule]["evidence"]
    assert by_rule["completes a run across a server restart"]["tools"] == ["prefect"]
    assert by_rule["completes a run after a worker is killed"]["tools"] == ["airflow", "prefect"]
    assert by_rule["fastest recovery from a killed worker"]["evidence"].startswith("not decided")
    assert all("local" not in r["tools"] for r in by_rule.values())


def test_the_caveats_are_in_the_report_itself(results: dict, rendered) -> None:
    markdown, html, _ = rendered
    # the fixture: 3 repetitions, two execution models, a busy-enough machine or not
    assert "## Caveats" in markdown and "<h2>Caveats</h2>" in html
    assert "only compared within one execution model" in markdown
    assert "5 or more are advised" in markdown


def test_the_poll_interval_of_each_tool_is_stated(rendered) -> None:
    """The harness's polling is outside every timer; the report says how often it was."""
    markdown, html, _ = rendered
    assert "**airflow** every 0.5 s; **prefect** every 0.25 s" in markdown
    assert "**local** no polling (waits for the run's process)" in markdown
    assert "<b>airflow</b> every 0.5 s" in html


def _markdown_tables(markdown: str) -> list[list[list[str]]]:
    """Each table of the markdown as rows of cells (the header first, no separator)."""
    tables, current = [], []
    for line in [*markdown.splitlines(), ""]:
        if line.startswith("|"):
            if not set(line) <= set("|-"):
                current.append([c.strip() for c in line.strip("|").split(" | ")])
        elif current:
            tables.append(current)
            current = []
    return tables


class _HtmlTables(HTMLParser):
    """Each <table> of the HTML as rows of cells, text unescaped."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _html_tables(html: str) -> list[list[list[str]]]:
    parser = _HtmlTables()
    parser.feed(html)
    return parser.tables


def test_each_tools_peak_memory_per_step_is_shown(results: dict, rendered) -> None:
    """Memory per step per tool (issue 13): a row per step, the median MB per tool column."""
    values: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for o in results["observations"]:
        if o["figure"] == "latency.step_peak_rss_mb":
            values[(o["tool"], o["profile"], o["params"]["step"])].append(o["value"])
    assert {tool for tool, _, _ in values} == set(results["plan"]["tools"])
    name = results["figures"]["latency.step_peak_rss_mb"]["name"]
    markdown, html, _ = rendered
    for tables in (_markdown_tables(markdown), _html_tables(html)):
        for (tool, profile, step), observed in values.items():
            column, label = f"{tool} ({profile})", f"{name} (step={step})"
            rows = [
                (row[1], row[table[0].index(column)])
                for table in tables
                if column in table[0]
                for row in table[1:]
                if row[0] == label
            ]
            assert len(rows) == 1, (column, label, rows)
            unit, cell = rows[0]
            median = fmt(statistics.median(observed), "MB")
            assert unit == "MB" and cell.split()[0] == median, (column, label, cell)


def test_the_plan_summary_is_one_bullet_per_line(results: dict, rendered) -> None:
    markdown, _, _ = rendered
    bullets = {line.split(":", 1)[0] for line in markdown.splitlines() if line.startswith("- ")}
    assert {"- Tools", "- Repetitions"} <= bullets
    if "databases" in results["plan"]:
        assert "- Metadata databases of Airflow and Prefect" in bullets
    assert not re.search(r"\)- ", markdown)  # a bullet glued to the end of the previous one


def test_each_sessions_start_load_and_duration_are_in_the_report(
    results: dict, tmp_path: Path
) -> None:
    with_sessions = {
        **results,
        "sessions": [
            {
                "repetition": r,
                "profile": "defaults",
                "tool": tool,
                "started_at": f"2026-11-30T1{r}:0{i}:00+00:00",
                "load_average_1m_at_start": 0.25 + r + i,
                "duration_s": 600.0 + i,
                # the second repetition resumed on newer code; the first predates the field
                **({"source_revision": "0123456789ab"} if r else {}),
                # ... after a reboot, on another machine of the same kind
                **(
                    {
                        "boot_id": f"b00t000{r}",
                        "cpu_model": "Some CPU",
                        "cpu_probe_s": 0.1 + i,
                        "quiet_wait_s": 5.0 + 10 * i,
                    }
                    if r
                    else {}
                ),
            }
            for r in range(2)
            for i, tool in enumerate(results["plan"]["tools"])
        ],
    }
    markdown, html = (p.read_text() for p in render_report(with_sessions, tmp_path))
    loads = [s["load_average_1m_at_start"] for s in with_sessions["sessions"]]
    summary = f"median {statistics.median(loads):.2f}, max {max(loads):.2f}"
    ends = [
        datetime.fromisoformat(s["started_at"]) + timedelta(seconds=s["duration_s"])
        for s in with_sessions["sessions"]
    ]
    span = f"Its {len(loads)} sessions ran from 2026-11-30 10:00 to {max(ends):%Y-%m-%d %H:%M} UTC"
    for text in (markdown, html):
        assert f"{len(loads)} sessions" in text and summary in text
        assert span in text.split("## ", 1)[0].split("<h2>", 1)[0]  # in the header
    for s in with_sessions["sessions"]:
        row = (
            f"| {s['started_at'][:19]} | {s['repetition'] + 1} | {s['tool']} | defaults | "
            f"{s['load_average_1m_at_start']:.2f} | {s['duration_s']:.0f} |"
        )
        assert row in markdown, row
    assert html.count("<tr><td>2026-11-30T1") == len(loads)
    tools = len(results["plan"]["tools"])
    revisions = f"not recorded ({tools} sessions), 0123456789ab ({tools} sessions)"
    assert revisions in markdown and revisions in html
    assert "| 600 | - | - | - | - |" in markdown
    assert "| 600 | 0123456789ab | b00t0001 | Some CPU | 0.100 |" in markdown
    probes = [0.1 + i for i in range(tools)]
    probe_median = f"{statistics.median(probes):.3f}"
    boots = (
        f"2 machine boots (boot id: sessions): not recorded: {tools}; "
        f"b00t0001: {tools}, probe median {probe_median} s"
    )
    assert boots in markdown and boots in html and "CPU models: Some CPU" in markdown
    # one CPU model: the Machine table names it once and no split table is printed
    assert "By CPU model" not in markdown and "By CPU model" not in html
    speed = f"took median {probe_median} s (range 0.100 to {max(probes):.3f} s, {tools} sessions)"
    assert speed in markdown and speed in html
    waits = [5.0 + 10 * i for i in range(tools)]
    quiet = (
        f"Before {tools} of them the harness waited for the CPU to be under 25% busy over 5 s: "
        f"median {statistics.median(waits):.0f} s, max {max(waits):.0f} s."
    )
    assert quiet in markdown and quiet in html


def test_a_results_json_without_sessions_says_so(rendered) -> None:
    markdown, html, _ = rendered
    for text in (markdown, html):
        assert "No session conditions were recorded in this results.json." in text


def test_scenario_coverage_has_a_column_per_database_label(results: dict, tmp_path: Path) -> None:
    """airflow+postgres is its own column: its failures do not hide behind airflow's ok."""
    labelled = json.loads(json.dumps(results))
    labelled["tools"]["airflow+postgres"] = labelled["tools"]["airflow"]
    labelled["outcomes"].append(
        {
            "scenario": "restart",
            "figure": None,
            "tool": "airflow+postgres",
            "profile": "defaults",
            "repetition": 0,
            "status": "error",
            "reason": "ScenarioFailed: a made-up failure",
            "duration_s": 0.0,
        }
    )
    markdown, html = (p.read_text() for p in render_report(labelled, tmp_path))
    assert "| scenario | local | airflow | airflow+postgres | prefect |" in markdown
    coverage = markdown.split("## Scenario coverage")[1].split("\n## ")[0]
    (restart,) = [line for line in coverage.splitlines() if line.startswith("| restart |")]
    cells = [c.strip() for c in restart.strip("|").split("|")]
    assert cells[3] == "error" and cells[2].startswith("ok")
    assert "<th>airflow+postgres</th>" in html


def test_notes_that_differ_only_in_ids_are_one_line(results: dict) -> None:
    """Five repetitions that each killed a different pid say one thing, counted five times."""
    from benchmarks.report.render import what_happened

    def note(pid: int, run: str, text: str = "SIGKILLed the worker") -> dict:
        reason = f"{text}, pid {pid} (LocalExecutor: {run}); it was replaced"
        return {
            "scenario": "kill_worker", "figure": None, "tool": "airflow",
            "profile": "defaults", "status": "ok", "reason": reason,
        }  # fmt: skip

    runs = ["01a230bb-64bf-7719-a3ed-6740eccfd1ff", "01a233d4-d8d7-7068-86ee-2e55f5360d14"]
    outcomes = [note(100 + i, runs[i % 2]) for i in range(5)] + [note(7, runs[0], "Timed out")]
    rows = what_happened({**results, "outcomes": outcomes}, "kill_worker")
    assert [(r["reason"], r["repetitions"]) for r in rows] == [
        (outcomes[0]["reason"], 5),
        (outcomes[5]["reason"], 1),
    ]


def test_a_phase_below_zero_is_named_as_a_clock_error(results: dict, tmp_path: Path) -> None:
    """A phase runs from one moment to a later one: the report says when one is negative."""
    clean = render_report(results, tmp_path / "clean")[0].read_text()
    assert "below zero" not in clean
    shifted = json.loads(json.dumps(results))
    waits = [o for o in shifted["observations"] if o["figure"] == "latency.wait_s"]
    waits[0]["value"] = -0.9
    waits[1]["value"] = -0.4
    markdown, html = (p.read_text() for p in render_report(shifted, tmp_path / "shifted"))
    tools = {waits[0]["tool"], waits[1]["tool"]}
    for tool in tools:
        count = sum(1 for o in waits[:2] if o["tool"] == tool)
        expected = f"{tool} latency.wait_s: {count} observation(s) below zero"
        assert expected in markdown and expected in html
