"""Before each session of a full benchmark the harness waits, bounded, for the CPU to be
quiet: the previous session's teardown must not be measured as the next one's start."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.harness import machine
from benchmarks.harness.plan import make_plan


class FakeCpu:
    """psutil.cpu_percent over a window, from a script of busy percentages; the clock
    advances by the window on each reading."""

    def __init__(self, busy: list[float]) -> None:
        self.busy: Iterator[float] = iter(busy)
        self.now = 0.0
        self.readings = 0

    def cpu_percent(self, interval: float) -> float:
        self.now += interval
        self.readings += 1
        return next(self.busy)


@pytest.fixture
def cpu(monkeypatch: pytest.MonkeyPatch) -> FakeCpu:
    fake = FakeCpu([])
    monkeypatch.setattr(machine.psutil, "cpu_percent", fake.cpu_percent)
    monkeypatch.setattr(machine.time, "perf_counter", lambda: fake.now)
    return fake


def test_it_waits_while_the_cpu_is_busy_and_goes_on_once_it_is_quiet(cpu: FakeCpu) -> None:
    cpu.busy = iter([95.0, 60.0, 30.0, 10.0, 90.0])
    waited = machine.wait_until_quiet(120.0)
    assert cpu.readings == 4  # the fourth window was the first under 25 %
    assert waited == 4 * machine.QUIET_WINDOW_S


def test_it_gives_up_at_the_bound_on_a_cpu_that_stays_busy(cpu: FakeCpu) -> None:
    cpu.busy = iter([100.0] * 100)
    waited = machine.wait_until_quiet(30.0)
    assert cpu.readings == 6 and waited == 30.0


def test_a_full_plan_waits_and_a_quick_one_does_not(tmp_path) -> None:
    common = dict(tools=["local"], scenarios=None, profiles=None, repeat=None, target="local")
    full = make_plan(**common, quick=False, urls={}, output_dir=tmp_path, environ={})
    quick = make_plan(**common, quick=True, urls={}, output_dir=tmp_path, environ={})
    assert full.quiet_wait_s > 0 and quick.quiet_wait_s == 0


def test_the_wait_is_an_option_of_orchbench_bench(tmp_path) -> None:
    from typer.testing import CliRunner

    from benchmarks.cli import app

    bad = CliRunner().invoke(app, ["bench", "--quiet-wait", "-1", "-o", str(tmp_path / "r")])
    assert bad.exit_code == 2 and "--quiet-wait" in bad.output
    assert not (tmp_path / "r").exists()
