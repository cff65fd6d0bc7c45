"""Reading the workers' own Prometheus endpoints: the demo's live view and the benchmarks
report what the processes measured, not a second opinion computed from outside."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families


@dataclass
class Scrape:
    """One scrape: plain samples by (name, labels) and histogram buckets by name."""

    values: dict[str, float] = field(default_factory=dict)
    labelled: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=lambda: defaultdict(list))
    buckets: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))

    def get(self, name: str, default: float = 0.0) -> float:
        return self.values.get(name, default)


def parse(text: str) -> Scrape:
    out = Scrape()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.endswith("_bucket"):
                out.buckets[s.name[: -len("_bucket")]].append((float(s.labels["le"]), s.value))
            elif s.labels:
                out.labelled[s.name].append((dict(s.labels), s.value))
                out.values[s.name] = out.values.get(s.name, 0.0) + s.value
            else:
                out.values[s.name] = s.value
    return out


def quantile(buckets: list[tuple[float, float]], q: float, base: list[tuple[float, float]] | None = None) -> float:
    """Quantile from cumulative histogram buckets, linearly interpolated inside the bucket
    (what Prometheus' histogram_quantile does). ``base`` subtracts an earlier scrape, giving the
    quantile of the window between the two."""
    prev = dict(base or [])
    cum = sorted((le, count - prev.get(le, 0.0)) for le, count in buckets)
    if not cum or cum[-1][1] <= 0:
        return math.nan
    rank = q * cum[-1][1]
    lo_le, lo_count = 0.0, 0.0
    for le, count in cum:
        if count >= rank:
            if math.isinf(le):
                return lo_le
            width = count - lo_count
            return lo_le + (le - lo_le) * ((rank - lo_count) / width if width > 0 else 1.0)
        lo_le, lo_count = le, count
    return cum[-1][0]
