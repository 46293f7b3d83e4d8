"""The HTML report in a real browser (headless Debian chromium): nothing is wider than the
page, every chart loaded; a screenshot is kept beside the rendered report."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.report.render import render_report
from tests.browser import chromium

FIXTURE = Path(__file__).parent / "fixtures" / "results.json"

# Elements wider than the viewport, and images that did not decode; the check runs in
# the page so it measures what the browser laid out.
OVERFLOW_JS = """
const width = document.documentElement.clientWidth;
const wide = [...document.querySelectorAll('table, img, pre, h1, h2, p')]
  .filter(e => e.getBoundingClientRect().right > width + 1)
  .map(e => e.tagName + ': ' + (e.innerText || e.alt || '').slice(0, 80));
const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0)
  .map(i => i.alt || i.src.slice(0, 40));
return {width, scroll: document.documentElement.scrollWidth, wide, broken,
        images: document.images.length, tables: document.querySelectorAll('table').length};
"""


def test_the_report_fits_the_page_in_a_real_browser(tmp_path: Path) -> None:
    results = json.loads(FIXTURE.read_text(encoding="utf-8"))
    _, html = render_report(results, tmp_path / "report")
    with chromium(tmp_path / "screenshots", width=1280, height=900) as browser:
        browser.open(html.as_uri())
        browser.wait_for_text("Which tool when", "Feature matrix", timeout_s=30)
        layout = browser.driver.execute_script(OVERFLOW_JS)
        shot = browser.screenshot("report-top")
        print(f"screenshot: {shot}")
    assert layout["tables"] > 5 and layout["images"] >= 1, layout
    assert layout["broken"] == [], f"charts that did not load: {layout['broken']}"
    assert layout["wide"] == [], f"wider than the {layout['width']} px page: {layout['wide']}"
    assert layout["scroll"] <= layout["width"], layout
