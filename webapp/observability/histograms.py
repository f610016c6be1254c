"""Cumulative histograms as Prometheus exposes them, and their quantiles as PromQL estimates them."""
from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.utils import floatToGoString

# bucket upper bounds (seconds, or images for batches); +Inf is added
E2E_BUCKETS = (0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30, 60, 120, 300, 600)
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass
class Histogram:
    bounds: tuple[float, ...]  # finite upper bounds, ascending
    cumulative: list[int]  # observations <= each bound
    count: int
    sum: float

    def buckets(self) -> list[tuple[str, int]]:
        """Prometheus ``le`` buckets, +Inf last."""
        return ([(floatToGoString(b), n) for b, n in zip(self.bounds, self.cumulative, strict=False)]
                + [("+Inf", self.count)])

    def quantile(self, q: float) -> float | None:
        """Estimated like PromQL's ``histogram_quantile``: linear inside the bucket holding the rank."""
        if not self.count:
            return None
        rank = q * self.count
        lower, below = 0.0, 0
        for bound, cumulative in zip(self.bounds, self.cumulative, strict=False):
            if cumulative >= rank:
                inside = cumulative - below
                return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = bound, cumulative
        return lower  # beyond the largest bound: that bound is all we know
