"""Fixtures shared by every suite. Imports nothing but shared_ml and the standard library."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIGS = REPO_ROOT / "configs"


@pytest.fixture
def orchbench_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ORCHBENCH_HOME: artifacts, registry and run records land in tmp."""
    monkeypatch.setenv("ORCHBENCH_HOME", str(tmp_path))
    monkeypatch.delenv("ORCHBENCH_FAULTS", raising=False)
    return tmp_path
