"""``orchbench report``: a report rendered again from a results.json, and bad input refused
without touching the report already there."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks.cli import app

FIXTURE = Path(__file__).parent / "fixtures" / "results.json"
cli = CliRunner()


def flat(text: str) -> str:
    """Output without whitespace: rich wraps long paths at the test terminal's width."""
    return "".join(text.split())


@pytest.fixture
def results_file(tmp_path: Path) -> Path:
    folder = tmp_path / "20261130T000000Z"
    folder.mkdir()
    return Path(shutil.copy(FIXTURE, folder / "results.json"))


def test_the_report_is_rendered_beside_its_results(results_file: Path) -> None:
    done = cli.invoke(app, ["report", str(results_file)])
    assert done.exit_code == 0, done.output
    folder = results_file.parent
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert markdown.startswith("# orchbench benchmark report")
    created = json.loads(results_file.read_text(encoding="utf-8"))["created_at"]
    assert created in markdown and created in (folder / "report.html").read_text()
    for link in ("figures/bars.png", "figures/scaling.png"):
        assert link in markdown and (folder / link).is_file()
    assert str(folder / "report.html") in flat(done.output)


def test_output_puts_the_report_elsewhere(results_file: Path, tmp_path: Path) -> None:
    done = cli.invoke(app, ["report", str(results_file), "--output", str(tmp_path / "copy")])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "copy" / "report.html").is_file()
    assert not (results_file.parent / "report.html").exists()


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ("{not json", "Expecting property name"),
        (json.dumps({"schema_version": 0}), "schema_version"),
        (None, "no such file"),
    ],
)
def test_bad_results_are_refused_and_the_old_report_stays(
    results_file: Path, content: str | None, named: str
) -> None:
    if content is None:
        results_file.unlink()
    else:
        results_file.write_text(content, encoding="utf-8")
    old = results_file.parent / "report.md"
    old.write_text("the report already here", encoding="utf-8")
    done = cli.invoke(app, ["report", str(results_file)])
    assert done.exit_code == 2
    assert str(results_file) in flat(done.output) and flat(named) in flat(done.output)
    assert old.read_text(encoding="utf-8") == "the report already here"
    assert not (results_file.parent / "report.html").exists()
