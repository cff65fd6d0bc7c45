"""The few places where the worker touches faust internals, each with the reason.

* Table writes need "the current event" to pick the changelog partition (and the RocksDB
  store, the partition's database). Faust sets it per event only inside a plain ``async for``;
  in a ``take_events`` batch we set it ourselves, per event, from the event being applied.
* ``take_events`` acks a batch in a ``finally``, even when the batch was cancelled half-way
  (SIGTERM during a Redis outage) or failed, and faust then commits those offsets on stop: the
  events would be lost. ``streams.acks.disown`` marks such events as already acked without
  telling the consumer, so their offsets are never committed and they are delivered again.
* faust builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` hard-coded, and Tansu holds
  a fetch for about half the wait even when records arrive meanwhile: at 200 events/s the worker
  stalled every ~0.75 s and event->feed p50 was ~470 ms (p99 ~975 ms). :class:`WorkerApp` builds
  the consumer with the worker's ``fetch_max_wait_ms`` instead (50 ms: p50 ~50 ms at 200/s). A
  short wait costs only empty fetches while idle (~20/s per worker); a broker that answers as
  soon as records arrive (Apache Kafka) is unaffected while busy.
* The worker scores batch k while it consumes and prepares batch k+1, so the agent moves on
  before batch k's feed write; ``streams.acks.hold``/``release`` keep batch k's offsets from
  being committed until then (faust's message refcount, the same mechanism that makes a message
  shared by two streams wait for both). The protocol around them: :mod:`streamrec.streams.acks`.
* The group's committed offset is in a private map of faust's consumer (:func:`committed_offset`);
  the lag per partition reads it and the consumer's high watermarks (:func:`partition_lag`).
"""

from __future__ import annotations

import contextlib
import time
import weakref
from typing import Any

import faust
from faust.streams import _current_event
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streamrec.streams.records import Record


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        wait_ms = getattr(self.app, "fetch_max_wait_ms", None)
        if wait_ms is not None:
            # read by AIOKafkaConsumer.start() when it builds its Fetcher (aiokafka 0.14)
            consumer._fetch_max_wait_ms = int(wait_ms)
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class WorkerApp(faust.App):
    """A faust app whose Kafka consumer waits at most ``fetch_max_wait_ms`` per fetch."""

    fetch_max_wait_ms: int | None = None

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


def set_current_event(event: Any) -> None:
    """Make ``event`` faust's current event in this task (for table writes)."""
    _current_event.set(weakref.ref(event))


def committed_offset(consumer: Any, tp: TP) -> int | None:
    """The group's committed offset of ``tp`` as faust's consumer last read it (the next offset
    to read), or None: faust keeps it in a private map and offers no accessor."""
    return getattr(consumer, "_committed_offset", {}).get(tp)


def partition_lag(consumer: Any, topic: str, processed: dict[int, int]) -> dict[int, int]:
    """Records waiting per assigned partition of ``topic``: the high watermark past the last
    processed offset (``processed``), or past the group's committed offset before the first
    batch. Empty while faust's consumer has no assignment yet."""
    out: dict[int, int] = {}
    try:
        assignment = consumer.assignment()
    except Exception:
        return out
    for tp in assignment:
        if tp.topic != topic:
            continue
        try:
            high = consumer.highwater(tp)
        except Exception:
            continue
        if high is None:
            continue
        done = processed.get(tp.partition)
        if done is None:
            committed = committed_offset(consumer, tp)
            done = (committed - 1) if committed is not None else -1
        out[tp.partition] = max(0, high - (done + 1))
    return out


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

    def delete(self, user_id: str, record: Record) -> None:
        """Delete the user's session: faust sends the changelog tombstone (to the partition of
        ``record``, the user's) before it touches the store, so an absent key still gets one."""
        if record.origin is not None:
            set_current_event(record.origin)
        with contextlib.suppress(KeyError):  # the memory store's dict raises for an absent key
            del self.table[user_id]
