"""Samples and their summaries: percentiles of per-exchange latency, throughput and CPU per exchange."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

__all__ = ["Samples", "percentile", "ratio"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    """``numerator / denominator``, or None when either is missing or the denominator is not positive."""
    if numerator is None or denominator is None or not denominator > 0 or math.isnan(numerator):
        return None
    return numerator / denominator


@dataclass
class Samples:
    """What one client did across its blocks: each exchange's wall time, and CPU and wall per block."""

    latencies_ns: List[int] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    blocks: int = 0

    def add_block(self, latencies_ns: List[int], cpu_s: float, wall_s: float) -> None:
        self.latencies_ns.extend(latencies_ns)
        self.cpu_s += cpu_s
        self.wall_s += wall_s
        self.blocks += 1

    @property
    def count(self) -> int:
        return len(self.latencies_ns)

    def p(self, q: float) -> float:
        """A latency percentile in microseconds."""
        return percentile(self.latencies_ns, q) / 1000.0

    def summary(self) -> Dict[str, Any]:
        """p50/p90/p99 (us), exchanges per second and client CPU per exchange (us)."""
        n = self.count
        return {
            "n": n,
            "blocks": self.blocks,
            "p50_us": round(self.p(50), 1),
            "p90_us": round(self.p(90), 1),
            "p99_us": round(self.p(99), 1),
            "mean_us": round(sum(self.latencies_ns) / n / 1000.0, 1) if n else None,
            "req_per_s": round(n / self.wall_s, 1) if self.wall_s > 0 else None,
            "cpu_us": round(self.cpu_s / n * 1e6, 1) if n else None,
        }
