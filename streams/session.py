"""A user's session as kept in the session table: last L items with types and timestamps, and
the ids of recent events for deduplication.

Pure functions over a plain dict so the table can store it as JSON (memory store in tests,
RocksDB in production) and the logic is testable without a broker. Bounded per user: L items
(default 50) and W event-id digests (default 128).

Deduplication matters because delivery is at-least-once: after a SIGKILL the events since the
last commit are delivered again, but their effect may already be in the table (its changelog
is written before offsets are committed). An event id seen in the window is not applied twice.

The value is written to the changelog once per user per batch, so its size is worker
throughput: ids are kept as 52-bit digests (~16 JSON characters instead of ~39 for a quoted
UUID; a false match needs a collision within one user's window, ~W / 2^52) and timestamps to
the millisecond. Values written with raw string ids are read and converted.

``feed`` is the digest of the last feed the worker knew the user held
(:mod:`streamrec.contracts.feed_digest`: ~4 characters per feed item), so the live hit rate
(:mod:`streamrec.streams.live_metrics`) and the training examples' ``shown`` survive a restart or a
rebalance; it is left out of the value while empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import blake2b
from typing import Any

from streamrec.contracts.events import Event


def id_digest(event_id: str) -> int:
    """52 bits of blake2b: an exact integer in every JSON reader (doubles hold 53)."""
    return int.from_bytes(blake2b(event_id.encode(), digest_size=7).digest(), "big") >> 4


@dataclass(slots=True)
class Session:
    """Items oldest first; ``recent_ids`` (digests of event ids) oldest first (FIFO window)."""

    items: list[str]
    types: list[str]
    ts: list[float]
    recent_ids: list[int]
    feed: str = ""

    @classmethod
    def empty(cls) -> Session:
        return cls([], [], [], [])

    @classmethod
    def from_value(cls, value: dict[str, Any] | None) -> Session:
        if not value:
            return cls.empty()
        ids = [e if isinstance(e, int) else id_digest(e) for e in value["e"]]
        return cls(list(value["i"]), list(value["t"]), list(value["s"]), ids, value.get("f", ""))

    def to_value(self) -> dict[str, Any]:
        """Compact JSON form for the table changelog (short keys: it is written once per user
        per batch)."""
        value = {"i": self.items, "t": self.types, "s": self.ts, "e": self.recent_ids}
        if self.feed:
            value["f"] = self.feed
        return value


def apply_event(session: Session, event: Event, session_length: int, dedupe_window: int) -> bool:
    """Append ``event`` to ``session`` in place; False (and no change) for a duplicate id.

    Items are appended in arrival order (the partition order), not sorted by ``ts``: the
    producer's order is the user's order, and a clock skew between producers must not
    reorder a session.
    """
    digest = id_digest(event.event_id)
    if digest in session.recent_ids:
        return False
    session.items.append(event.item_id)
    session.types.append(event.type)
    session.ts.append(round(event.ts, 3))
    session.recent_ids.append(digest)
    if len(session.items) > session_length:
        drop = len(session.items) - session_length
        del session.items[:drop], session.types[:drop], session.ts[:drop]
    if len(session.recent_ids) > dedupe_window:
        del session.recent_ids[: len(session.recent_ids) - dedupe_window]
    return True
