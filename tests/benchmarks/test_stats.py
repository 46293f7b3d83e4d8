"""Statistics and slope fitting, on data whose answers are known."""

from __future__ import annotations

import pytest

from benchmarks.harness.stats import fit_line, summarize


def test_summary_of_odd_sample() -> None:
    s = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.n, s.median, s.min, s.max) == (5, 3.0, 1.0, 5.0)
    assert (s.q1, s.q3, s.iqr) == (2.0, 4.0, 2.0)


def test_summary_of_even_sample_interpolates() -> None:
    s = summarize([1, 2, 3, 4])
    assert s.median == 2.5
    assert s.q1 == pytest.approx(1.75)
    assert s.q3 == pytest.approx(3.25)


def test_single_measurement_has_no_spread() -> None:
    s = summarize([7.5])
    assert (s.median, s.min, s.max, s.iqr) == (7.5, 7.5, 7.5, 0.0)
    assert s.as_dict()["iqr"] == 0.0


def test_empty_or_nan_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        summarize([])
    with pytest.raises(ValueError, match="NaN"):
        summarize([1.0, float("nan")])


def test_exact_line_is_recovered() -> None:
    xs = [1, 10, 50, 1, 10, 50]
    fit = fit_line(xs, [0.5 + 0.2 * x for x in xs])
    assert fit.slope == pytest.approx(0.2)
    assert fit.intercept == pytest.approx(0.5)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.n_points == 6
    assert fit.predict(100) == pytest.approx(20.5)


def test_noisy_line_r2_matches_hand_computation() -> None:
    # y = 1 + 2x with residuals +1, -1, +1, -1 around it
    fit = fit_line([0, 1, 2, 3], [2, 2, 6, 6])
    assert fit.slope == pytest.approx(1.6)
    assert fit.intercept == pytest.approx(1.6)
    # ss_tot = 16, residuals (0.4, -1.2, 1.2, -0.4) -> ss_res = 3.2
    assert fit.r2 == pytest.approx(1 - 3.2 / 16)


def test_flat_data_has_undefined_r2() -> None:
    fit = fit_line([1, 2, 3], [4, 4, 4])
    assert fit.slope == 0 and fit.intercept == 4 and fit.r2 is None


def test_fit_needs_two_distinct_sizes() -> None:
    with pytest.raises(ValueError, match="two distinct"):
        fit_line([5, 5], [1, 2])
    with pytest.raises(ValueError, match="x values"):
        fit_line([1, 2], [1])
