"""Summary statistics and the least-squares fits used for scaling figures."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Summary:
    """Median and spread of repeated measurements of one figure."""

    n: int
    median: float
    min: float
    max: float
    q1: float
    q3: float

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
    return Summary(
        n=len(data), median=statistics.median(data), min=data[0], max=data[-1], q1=q1, q3=q3
    )


@dataclass(frozen=True)
class LinearFit:
    """y = intercept + slope * x, by ordinary least squares, with R²."""

    slope: float
    intercept: float
    r2: float | None  # None when every y is equal (R² is undefined)
    n_points: int

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
    return LinearFit(slope=slope, intercept=intercept, r2=r2, n_points=len(xs))
