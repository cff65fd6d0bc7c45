"""A user's session as kept in the session table: last L items with types and timestamps, and
the ids of recent events for deduplication.

Pure functions over a plain dict so the table can store it as JSON (memory store in tests,
RocksDB in production) and the logic is testable without a broker. Bounded per user: L items
(default 50) and W event ids (default 128), ~6 KB of JSON at 36-character UUIDs, so 1M users
stay under ~6 GB of table state.

Deduplication matters because delivery is at-least-once: after a SIGKILL the events since the
last commit are delivered again, but their effect may already be in the table (its changelog
is written before offsets are committed). An event id seen in the window is not applied twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamrec.events import Event


@dataclass(slots=True)
class Session:
    """Items oldest first; ``recent_ids`` oldest first (FIFO window)."""

    items: list[str]
    types: list[str]
    ts: list[float]
    recent_ids: list[str]

    @classmethod
    def empty(cls) -> Session:
        return cls([], [], [], [])

    @classmethod
    def from_value(cls, value: dict[str, Any] | None) -> Session:
        if not value:
            return cls.empty()
        return cls(list(value["i"]), list(value["t"]), list(value["s"]), list(value["e"]))

    def to_value(self) -> dict[str, Any]:
        """Compact JSON form for the table changelog (short keys: it is written once per user
        per batch)."""
        return {"i": self.items, "t": self.types, "s": self.ts, "e": self.recent_ids}


def apply_event(session: Session, event: Event, max_items: int, dedupe_window: int) -> bool:
    """Append ``event`` to ``session`` in place; False (and no change) for a duplicate id.

    Items are appended in arrival order (the partition order), not sorted by ``ts``: the
    producer's order is the user's order, and a clock skew between producers must not
    reorder a session.
    """
    if event.event_id in session.recent_ids:
        return False
    session.items.append(event.item_id)
    session.types.append(event.type)
    session.ts.append(event.ts)
    session.recent_ids.append(event.event_id)
    if len(session.items) > max_items:
        drop = len(session.items) - max_items
        del session.items[:drop], session.types[:drop], session.ts[:drop]
    if len(session.recent_ids) > dedupe_window:
        del session.recent_ids[: len(session.recent_ids) - dedupe_window]
    return True
