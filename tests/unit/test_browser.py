"""``tests.browser.require_browser``: a UI test without Chromium is skipped with the reason,
except under CI (``CI=true``), where it fails, because ``.ci/run`` must install it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import INSTALL_HINT, require_browser


@pytest.fixture
def no_browser_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH is one empty folder: no chromium, chromium-browser, chrome or chromedriver."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    return folder


def test_skipped_with_the_reason_outside_ci(
    no_browser_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_browser()
    message = str(skipped.value)
    assert "UI test skipped" in message
    assert "no chromium and chromedriver on PATH" in message and INSTALL_HINT in message


def test_fails_under_ci(no_browser_on_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as failed:
        require_browser()
    message = str(failed.value)
    assert "UI test under CI" in message and ".ci/run must install it" in message
    assert "no chromium and chromedriver on PATH" in message


def test_names_only_the_missing_driver(
    no_browser_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    browser = no_browser_on_path / "chromium"
    browser.write_text("#!/bin/sh\n", encoding="utf-8")
    browser.chmod(0o755)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_browser()
    assert "no chromedriver on PATH" in str(skipped.value)
    assert "chromium and" not in str(skipped.value)
