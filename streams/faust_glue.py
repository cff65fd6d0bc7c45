"""The few places where the worker touches faust internals, each with the reason.

* Table writes need "the current event" to pick the changelog partition (and the RocksDB
  store, the partition's database). Faust sets it per event only inside a plain ``async for``;
  in a ``take_events`` batch we set it ourselves, per event, from the event being applied.
* ``take_events`` acks a batch in a ``finally``, even when the batch was cancelled half-way
  (SIGTERM during a Redis outage) or failed, and faust then commits those offsets on stop: the
  events would be lost. :func:`disown` marks such events as already acked without telling the
  consumer, so their offsets are never committed and they are delivered again after restart.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable
from typing import Any

from faust.streams import _current_event

from streamrec.streams.records import Record


def set_current_event(event: Any) -> None:
    """Make ``event`` faust's current event in this task (for table writes)."""
    _current_event.set(weakref.ref(event))


def disown(events: Iterable[Any]) -> None:
    """Keep these events' offsets from ever being committed by this process."""
    for event in events:
        event.message.acked = True


def to_record(event: Any) -> Record:
    m = event.message
    # faust's Message.timestamp is the broker/producer time in seconds (None if absent).
    ts = m.timestamp if m.timestamp is not None else time.time()
    return Record(m.topic, m.partition, m.offset, ts, m.key, m.value, event)


class TableSessionStore:
    """:class:`streamrec.streams.pipeline.SessionStore` over a faust Table."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def get(self, user_id: str, record: Record) -> dict[str, Any] | None:
        if record.origin is not None:
            set_current_event(record.origin)
        return self.table.get(user_id)

    def put(self, user_id: str, value: dict[str, Any], record: Record) -> None:
        if record.origin is not None:
            set_current_event(record.origin)
        self.table[user_id] = value
