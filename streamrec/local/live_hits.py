"""The demo's online hit rate@10, read from the worker's live counters
(``streamrec_live_*_total``, :mod:`streamrec.streams.live_metrics`) instead of from Redis.

The worker scores each event against the feed its user held just before it was processed; the
demo keeps the cumulative counters of every scrape, so a window is the difference of two
scrapes: hit rate@10 = Δ hits_at_10 / Δ events_with_feed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from streamrec.experiment_report import EVENTS, HITS_10
from streamrec.prom import Scrape


@dataclass(frozen=True, slots=True)
class LiveCount:
    """Cumulative events with a feed and hits@10 at one scrape (all versions and arms)."""

    events: float = 0.0
    hits: float = 0.0

    @classmethod
    def of(cls, scrape: Scrape) -> LiveCount:
        return cls(scrape.get(EVENTS), scrape.get(HITS_10))

    def rate_since(self, earlier: LiveCount) -> float:
        n = self.events - earlier.events
        return (self.hits - earlier.hits) / n if n > 0 else math.nan


def version_rate(scrape: Scrape, version: str) -> tuple[float, float]:
    """(hits@10, events with a feed) over the feeds that ``version`` produced."""

    def of(name: str) -> float:
        return sum(v for labels, v in scrape.labelled.get(name, []) if labels.get("version") == version)

    return of(HITS_10), of(EVENTS)


def window_start(counts: list[LiveCount], final: LiveCount, fraction: float) -> LiveCount:
    """The latest scrape before which at most ``1 - fraction`` of the events were counted: the
    window from there to ``final`` holds the last ``fraction`` of them (to one scrape's events)."""
    cut = final.events * (1.0 - fraction)
    start = LiveCount()
    for c in counts:
        if c.events <= cut:
            start = c
    return start
