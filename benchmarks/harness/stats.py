"""Summary statistics and the least-squares fits used for scaling figures.

A figure's interval is a bootstrap 95% confidence interval of its median (scipy's
``stats.bootstrap``, percentile method, a fixed seed so a report is reproducible from its
observations). Below ``MIN_N_FOR_INTERVAL`` repetitions there is no interval: a verdict
then cannot be made, and the report says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95
MIN_N_FOR_INTERVAL = 3
BOOTSTRAP_RESAMPLES = 4999
BOOTSTRAP_SEED = 20261129


@dataclass(frozen=True)
class Summary:
    """Median and spread of repeated measurements of one figure."""

    n: int
    median: float
    min: float
    max: float
    q1: float
    q3: float
    p95: float  # linear interpolation between the sample's order statistics
    ci_low: float | None  # bootstrap 95% CI of the median; None below MIN_N_FOR_INTERVAL
    ci_high: float | None

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "iqr": self.iqr}


def summarize(values: Sequence[float]) -> Summary:
    """Median, min/max and quartiles (inclusive method: quartiles of the sample itself,
    so one value has zero spread and two values have the quartiles between them)."""
    data = sorted(float(v) for v in values)
    if not data:
        raise ValueError("cannot summarize an empty list of measurements")
    if any(math.isnan(v) for v in data):
        raise ValueError("measurements contain NaN")
    if len(data) == 1:
        q1 = q3 = data[0]
    else:
        q1, _, q3 = statistics.quantiles(data, n=4, method="inclusive")
    ci_low, ci_high = median_interval(data)
    return Summary(
        n=len(data),
        median=statistics.median(data),
        min=data[0],
        max=data[-1],
        q1=q1,
        q3=q3,
        p95=float(np.percentile(data, 95)),
        ci_low=ci_low,
        ci_high=ci_high,
    )


def median_interval(data: Sequence[float]) -> tuple[float | None, float | None]:
    """The bootstrap confidence interval of the median, or (None, None) for too few values."""
    if len(data) < MIN_N_FOR_INTERVAL:
        return None, None
    if min(data) == max(data):
        return float(data[0]), float(data[0])  # no spread: the bootstrap has none either
    result = scipy_stats.bootstrap(
        (np.asarray(data, dtype=float),),
        np.median,
        confidence_level=CONFIDENCE,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def intervals_overlap(a: dict, b: dict) -> bool:
    """Whether two summaries' intervals overlap (a summary without one overlaps all)."""
    if None in (a.get("ci_low"), a.get("ci_high"), b.get("ci_low"), b.get("ci_high")):
        return True
    return not (a["ci_high"] < b["ci_low"] or b["ci_high"] < a["ci_low"])


@dataclass(frozen=True)
class LinearFit:
    """y = intercept + slope * x, by ordinary least squares, with R²."""

    slope: float
    intercept: float
    r2: float | None  # None when every y is equal (R² is undefined)
    n_points: int
    slope_ci_low: float | None = None  # 95% CI of the slope; None below 3 points
    slope_ci_high: float | None = None

    def predict(self, x: float) -> float:
        return self.intercept + self.slope * x


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> LinearFit:
    if len(xs) != len(ys):
        raise ValueError(f"fit_line: {len(xs)} x values but {len(ys)} y values")
    if len(xs) < 2 or len(set(xs)) < 2:
        raise ValueError("fit_line needs at least two distinct x values")
    x_mean = statistics.fmean(xs)
    y_mean = statistics.fmean(ys)
    sxx = sum((x - x_mean) ** 2 for x in xs)
    sxy = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = y_mean - slope * x_mean
    ss_total = sum((y - y_mean) ** 2 for y in ys)
    ss_residual = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    r2 = None if ss_total == 0 else 1.0 - ss_residual / ss_total
    low = high = None
    if len(xs) > 2:
        # slope ± t(0.975, n-2) · its standard error (the residuals' spread over Sxx)
        half = scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, len(xs) - 2) * math.sqrt(
            ss_residual / (len(xs) - 2) / sxx
        )
        low, high = slope - half, slope + half
    return LinearFit(
        slope=slope,
        intercept=intercept,
        r2=r2,
        n_points=len(xs),
        slope_ci_low=low,
        slope_ci_high=high,
    )
