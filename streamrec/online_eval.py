"""Online hit rate in process: was the event's item in the top-10 of the feed the user had just
before it? The in-process streaming eval (streamrec.local.stream_eval) scores its replay with
it; the running system counts the same in the worker (streamrec.streams.live_metrics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from streamrec.contracts.events import Event
from streamrec.contracts.feed import Feed


@dataclass
class HitRecord:
    at: float  # seconds since replay start
    hit: bool
    model_version: str


@dataclass
class OnlineHitRate:
    """Per-event hits against the feed shown before each event (events with no feed yet are
    counted separately: there was nothing to hit)."""

    k: int = 10
    records: list[HitRecord] = field(default_factory=list)
    no_feed: int = 0

    def score(self, events: Sequence[Event], feeds: Sequence[Feed | None], at: float) -> None:
        """Score each event against the feed its user held before it (None: no feed yet)."""
        for ev, feed in zip(events, feeds, strict=True):
            if feed is None:
                self.no_feed += 1
                continue
            self.records.append(HitRecord(at, ev.item_id in feed.items[: self.k], feed.model_version))

    def rate(self, records: Sequence[HitRecord] | None = None) -> float:
        rs = self.records if records is None else records
        return sum(r.hit for r in rs) / len(rs) if rs else float("nan")

    def last_fraction(self, fraction: float) -> list[HitRecord]:
        n = max(1, int(len(self.records) * fraction))
        return self.records[-n:]
