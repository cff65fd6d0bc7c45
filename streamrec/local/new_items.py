"""How soon an item first seen in a replay reaches a feed: the streaming replay's measure of
"new items are recommendable within seconds" (issue: online learning; the hybrid's live table and
the online trainer's new rows are the two ways in).

An item is new when neither the served model nor the older part of the log knows it. Its delay
is counted in events, from the event that first shows it to the end of the first worker batch
that writes it into any user's feed; at the demo's replay rate (1,000 events/s) 1,000 events
are one second.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from streamrec.contracts.events import Event
from streamrec.contracts.feed import Feed


@dataclass
class NewItemDelay:
    """Fed every replayed chunk (:meth:`saw`) and every feed write (:meth:`served`)."""

    known: set[str]
    first_seen: dict[str, int] = field(default_factory=dict)  # new item -> event index
    first_fed: dict[str, int] = field(default_factory=dict)  # new item -> events done at its first feed

    def saw(self, events: Sequence[Event], start: int) -> None:
        for n, ev in enumerate(events):
            if ev.item_id not in self.known and ev.item_id not in self.first_seen:
                self.first_seen[ev.item_id] = start + n

    def served(self, feeds: Iterable[Feed], done_at: int) -> None:
        for f in feeds:
            for item in f.items:
                if item in self.first_seen and item not in self.first_fed:
                    self.first_fed[item] = done_at

    def summary(self, rate: float) -> dict:
        delays = np.array([self.first_fed[i] - self.first_seen[i] for i in self.first_fed], np.float64)
        median = float(np.median(delays)) if len(delays) else None
        return {
            "new_items": len(self.first_seen),
            "reached_a_feed": len(self.first_fed),
            "median_delay_events": median,
            "median_delay_s_at_replay_rate": None if median is None else round(median / rate, 3),
            "replay_rate_events_per_s": rate,
        }
