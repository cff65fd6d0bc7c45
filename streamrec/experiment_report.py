"""An experiment's result from the workers' live counters: each arm's hit rate@10 with a 95%
confidence interval, and its difference from the control arm with one.

The counts are the worker's (:mod:`streamrec.streams.live_metrics`), summed over model versions
and over workers (each counts the events of its partitions): ``hits`` = events whose item was in
the top 10 of the feed the user held, ``events`` = events whose user held a feed.

Intervals: Wilson's score interval for one arm's proportion (it stays inside [0, 1] and keeps
its coverage at small counts, where the normal interval does not); Newcombe's hybrid score
interval (his method 10, built from the two Wilson intervals) for the difference of two arms;
and for the relative difference (arm / control - 1, the "+14%" a product team reads) the log
interval of the ratio of two proportions (Katz). Each treats events as independent draws. They
are not quite: one user's events share the user, and arms are assigned per user, so the
intervals are somewhat narrower than the truth when a few users make many of the events.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from streamrec.experiment import Arm
from streamrec.prom import Scrape

EVENTS = "streamrec_live_events_with_feed_total"
HITS_10 = "streamrec_live_hits_at_10_total"
WITHOUT_FEED = "streamrec_live_events_without_feed_total"
Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson(hits: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of the proportion ``hits / n`` (nan, nan for n = 0)."""
    if n <= 0:
        return math.nan, math.nan
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(x1: float, n1: float, x2: float, n2: float, z: float = Z95) -> tuple[float, float]:
    """Newcombe's hybrid score interval of p1 - p2 (``x1 / n1`` minus ``x2 / n2``)."""
    if n1 <= 0 or n2 <= 0:
        return math.nan, math.nan
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def ratio_interval(x1: float, n1: float, x2: float, n2: float, z: float = Z95) -> tuple[float, float]:
    """Katz's log interval of (x1 / n1) / (x2 / n2); nan without a hit in either arm."""
    if min(x1, x2, n1, n2) <= 0:
        return math.nan, math.nan
    ratio = (x1 / n1) / (x2 / n2)
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x2 - 1 / n2)
    return ratio * math.exp(-z * se), ratio * math.exp(z * se)


@dataclass
class ArmCount:
    """One arm's counters, summed over workers and versions (``versions``: events per version)."""

    hits: float = 0.0
    events: float = 0.0
    without_feed: float = 0.0
    versions: dict[str, float] = field(default_factory=dict)


def arm_counts(scrapes: list[Scrape]) -> dict[str, ArmCount]:
    """Per arm label, the live counters of every worker's scrape added up."""
    out: dict[str, ArmCount] = defaultdict(ArmCount)
    for scrape in scrapes:
        for labels, value in scrape.labelled.get(EVENTS, []):
            count = out[labels.get("arm", "")]
            count.events += value
            version = labels.get("version", "")
            count.versions[version] = count.versions.get(version, 0.0) + value
        for labels, value in scrape.labelled.get(HITS_10, []):
            out[labels.get("arm", "")].hits += value
        for labels, value in scrape.labelled.get(WITHOUT_FEED, []):
            out[labels.get("arm", "")].without_feed += value
    return dict(out)


def _num(x: float, digits: int = 5) -> float | None:
    """JSON has no NaN: an undefined figure is null."""
    return None if math.isnan(x) else round(x, digits)


def _pair(pair: tuple[float, float]) -> list[float | None]:
    return [_num(pair[0]), _num(pair[1])]


def report(counts: dict[str, ArmCount], control: str, arms: tuple[Arm, ...] = ()) -> dict[str, Any]:
    """The report as JSON-ready data: the configured ``arms`` in their order (with their policy),
    then any other arm label the counters hold; each arm against ``control``."""
    names = [a.name for a in arms] + sorted(set(counts) - {a.name for a in arms})
    policy = {a.name: a.policy for a in arms}
    base = counts.get(control, ArmCount())
    rows = []
    for name in names:
        c = counts.get(name, ArmCount())
        row: dict[str, Any] = {
            "arm": name,
            "policy": policy.get(name),
            "events_with_feed": int(c.events),
            "events_without_feed": int(c.without_feed),
            "hits_at_10": int(c.hits),
            "hit_rate_at_10": _num(c.hits / c.events if c.events else math.nan),
            "ci95": _pair(wilson(c.hits, c.events)),
            "versions": {v: int(n) for v, n in sorted(c.versions.items())},
        }
        if name != control:
            d = c.hits / c.events - base.hits / base.events if c.events and base.events else math.nan
            r = ratio_interval(c.hits, c.events, base.hits, base.events)
            lift = (c.hits / c.events) / (base.hits / base.events) - 1 if c.events and base.hits else math.nan
            row["vs_control"] = {
                "difference": _num(d),
                "difference_ci95": _pair(difference_interval(c.hits, c.events, base.hits, base.events)),
                "relative": _num(lift),
                "relative_ci95": _pair((r[0] - 1, r[1] - 1)),
            }
        rows.append(row)
    return {"control": control, "confidence": 0.95, "arms": rows}
