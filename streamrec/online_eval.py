"""Online hit rate: was the event's item in the top-10 of the feed the user had just before it?

This is the number a product owner cares about (did the list we showed contain what they
clicked next), measured on the live system rather than offline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import redis

from streamrec.contracts.events import Event
from streamrec.contracts.feed import Feed, feed_key


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

    def check(self, client: redis.Redis, prefix: str, events: Sequence[Event], at: float) -> None:
        """Read the feeds of these events' users in one round trip and score each event."""
        pipe = client.pipeline(transaction=False)
        for ev in events:
            pipe.hget(feed_key(prefix, ev.user_id), "feed")
        for ev, raw in zip(events, pipe.execute(), strict=True):
            if raw is None:
                self.no_feed += 1
                continue
            feed = Feed.unpack(raw)
            self.records.append(HitRecord(at, ev.item_id in feed.items[: self.k], feed.model_version))

    def rate(self, records: Sequence[HitRecord] | None = None) -> float:
        rs = self.records if records is None else records
        return sum(r.hit for r in rs) / len(rs) if rs else float("nan")

    def by_version(self, version: str) -> list[HitRecord]:
        return [r for r in self.records if r.model_version == version]

    def last_fraction(self, fraction: float) -> list[HitRecord]:
        n = max(1, int(len(self.records) * fraction))
        return self.records[-n:]
