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
are not: one user's events share the user (their taste, how predictable they are), and arms are
assigned per user, so when a few hundred users make all the events these intervals are too
narrow. The ``users_*`` intervals are the honest ones there: the workers also count by the user's
bucket (:data:`streamrec.experiment.BUCKETS` groups of users per arm, by hash), and the report
takes each bucket as one independent draw: the ratio estimator's linearised standard error over
the buckets, with Student's t on buckets - 1 degrees of freedom; the difference's on the fewer of
the two arms' (conservative), the ratio's by the delta method on its log.
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
BUCKET_EVENTS = "streamrec_live_bucket_events_with_feed_total"
BUCKET_HITS_10 = "streamrec_live_bucket_hits_at_10_total"
Z95 = 1.959963984540054  # the standard normal's 97.5% quantile
# Student's t 97.5% quantiles for 1..30 degrees of freedom (beyond, z: 2.04 at 30 -> 1.96)
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131)
T975 += (2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


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


def t975(df: int) -> float:
    return T975[df - 1] if 1 <= df <= len(T975) else Z95


@dataclass(frozen=True)
class Clustered:
    """A hit rate estimated over buckets of users: the rate, its standard error, degrees of freedom."""

    rate: float
    se: float
    df: int


def clustered(buckets: dict[str, list[float]]) -> Clustered:
    """The ratio estimator sum(hits) / sum(events) over buckets ({bucket: [hits, events]}) and its
    linearised standard error, each bucket one draw (nan with fewer than 2 buckets that have events)."""
    cells = [(x, n) for x, n in buckets.values() if n > 0]
    if len(cells) < 2:
        return Clustered(math.nan, math.nan, 0)
    total = sum(n for _, n in cells)
    rate = sum(x for x, _ in cells) / total
    b = len(cells)
    spread = b / (b - 1) * sum((x - rate * n) ** 2 for x, n in cells)
    return Clustered(rate, math.sqrt(spread) / total, b - 1)


def clustered_interval(c: Clustered) -> tuple[float, float]:
    if math.isnan(c.rate):
        return math.nan, math.nan
    half = t975(c.df) * c.se
    return max(0.0, c.rate - half), min(1.0, c.rate + half)


def clustered_difference(a: Clustered, b: Clustered) -> tuple[float, float]:
    """Interval of a.rate - b.rate (independent arms: disjoint users)."""
    half = t975(min(a.df, b.df)) * math.hypot(a.se, b.se)
    d = a.rate - b.rate
    return d - half, d + half


def clustered_ratio(a: Clustered, b: Clustered) -> tuple[float, float]:
    """Interval of a.rate / b.rate by the delta method on its log (nan without a hit in either)."""
    if not (a.rate > 0 and b.rate > 0):
        return math.nan, math.nan
    half = t975(min(a.df, b.df)) * math.hypot(a.se / a.rate, b.se / b.rate)
    ratio = a.rate / b.rate
    return ratio * math.exp(-half), ratio * math.exp(half)


@dataclass
class ArmCount:
    """One arm's counters, summed over workers and versions (``versions``: events per version;
    ``buckets``: [hits@10, events] per bucket of users)."""

    hits: float = 0.0
    events: float = 0.0
    without_feed: float = 0.0
    versions: dict[str, float] = field(default_factory=dict)
    buckets: dict[str, list[float]] = field(default_factory=dict)


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
        for name, column in ((BUCKET_HITS_10, 0), (BUCKET_EVENTS, 1)):
            for labels, value in scrape.labelled.get(name, []):
                cell = out[labels.get("arm", "")].buckets.setdefault(labels.get("bucket", ""), [0.0, 0.0])
                cell[column] += value
    return dict(out)


def _num(x: float, digits: int = 5) -> float | None:
    """JSON has no NaN: an undefined figure is null."""
    return None if math.isnan(x) else round(x, digits)


def _pair(pair: tuple[float, float]) -> list[float | None]:
    return [_num(pair[0]), _num(pair[1])]


def _minus_one(ratio: tuple[float, float]) -> tuple[float, float]:
    """A ratio's interval as a relative difference (ratio - 1)."""
    return ratio[0] - 1, ratio[1] - 1


def report(counts: dict[str, ArmCount], control: str, arms: tuple[Arm, ...] = ()) -> dict[str, Any]:
    """The report as JSON-ready data: the configured ``arms`` in their order (with their policy),
    then any other arm label the counters hold; each arm against ``control``."""
    names = [a.name for a in arms] + sorted(set(counts) - {a.name for a in arms})
    policy = {a.name: a.policy for a in arms}
    base = counts.get(control, ArmCount())
    base_users = clustered(base.buckets)
    rows = []
    for name in names:
        c = counts.get(name, ArmCount())
        users = clustered(c.buckets)
        row: dict[str, Any] = {
            "arm": name,
            "policy": policy.get(name),
            "events_with_feed": int(c.events),
            "events_without_feed": int(c.without_feed),
            "hits_at_10": int(c.hits),
            "hit_rate_at_10": _num(c.hits / c.events if c.events else math.nan),
            "ci95": _pair(wilson(c.hits, c.events)),
            "users_ci95": _pair(clustered_interval(users)),
            "user_buckets": sum(1 for _, n in c.buckets.values() if n > 0),
            "versions": {v: int(n) for v, n in sorted(c.versions.items())},
        }
        if name != control:
            d = c.hits / c.events - base.hits / base.events if c.events and base.events else math.nan
            lift = (c.hits / c.events) / (base.hits / base.events) - 1 if c.events and base.hits else math.nan
            row["vs_control"] = {
                "difference": _num(d),
                "difference_ci95": _pair(difference_interval(c.hits, c.events, base.hits, base.events)),
                "relative": _num(lift),
                "relative_ci95": _pair(_minus_one(ratio_interval(c.hits, c.events, base.hits, base.events))),
                "difference_users_ci95": _pair(clustered_difference(users, base_users)),
                "relative_users_ci95": _pair(_minus_one(clustered_ratio(users, base_users))),
            }
        rows.append(row)
    return {"control": control, "confidence": 0.95, "arms": rows}
