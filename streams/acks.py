"""The worker's commit protocol, in one place: when an event's offset may be committed.

Faust commits, every ``commit_interval_s``, the highest offset below which every message of a
partition is acked. The worker acks nothing before its feed is in Redis (at-least-once; feed
writes are idempotent), and scores batch k while the agent consumes and prepares batch k+1.
:meth:`BatchAcks.submit` takes a batch from ``take_events`` through these steps:

1. **Offset order.** Each event's offset is checked against its partition's next expected one
   (:class:`OffsetGuard`). An event above a hole is held back (disowned: never acked) and the
   partition is sought back to the hole, so the missing record is fetched again and processed
   first (why: below). A redelivery of something already processed passes.
2. **Hold.** Every kept event's message takes one more reference (:func:`hold`):
   ``take_events`` acks the batch as soon as the agent moves on, and with the feed write still
   in flight that ack must not be the last one.
3. **Prepare** on the event loop (validate, sessions, dead letters): an error here disowns the
   batch and stops the worker.
4. **Finish** in a task (score, write feeds, training examples), at most two batches in
   flight; before its feed write a batch waits for the one before it, and if that one failed,
   it fails too (:class:`_EarlierBatchFailed`): batches complete in order.
5. **Release** (:func:`release`) after the batch's own feed write: its offsets become
   committable. A failed or cancelled batch is disowned instead, so it is redelivered after a
   restart and never committed; an error (other than an earlier batch's) stops the worker.
6. **Abandon** (:meth:`BatchAcks.abandon`): when the agent stops, batches still in flight are
   cancelled (step 5 disowns them). After a rebalance, :meth:`BatchAcks.reset` restarts the
   offset positions from the group's committed offsets.

Why step 1: in reliability runs (a second worker joins, then the first leaves) faust-streaming
0.15.3 now and then never hands one record to the agent around a rebalance or a batch boundary,
and its commit logic (``Consumer._new_offset`` lets the head of the acked list be one above the
committed offset) then commits past it: that event was lost from its user's session. The events
topic is neither compacted nor transactional, so a hole in the offsets the agent sees is a
record that went missing. A log can hold real holes (a transactional producer's commit markers,
or a compacted topic set up by mistake): after ``max_seeks`` seeks that bring back nothing at
the expected offset the hole is accepted, with a warning, and the partition is sought back to
the lowest offset that arrived above it, so the records held back meanwhile are processed (a
broker that lost acknowledged records across a restart left such a hole: docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from streamrec.streams.faust_glue import to_record
from streamrec.streams.pipeline import BatchPipeline, Prepared

log = logging.getLogger(__name__)


def hold(events: Iterable[Any]) -> None:
    """Take a reference on each event's message: ``take_events`` acks a batch as soon as the
    agent moves on to the next one, which (with the feed write still in flight) would let the
    offset be committed early; with this reference its ack is not the last one, and the offset
    becomes committable only at :func:`release`, after the feed write."""
    for event in events:
        event.message.incref()


def release(events: Iterable[Any]) -> None:
    """Drop the reference taken by :func:`hold`: the offsets become committable (faust commits
    only contiguous acked offsets, and the worker releases batches in order)."""
    for event in events:
        event.ack()


def disown(events: Iterable[Any]) -> None:
    """Keep these events' offsets from ever being committed by this process."""
    for event in events:
        event.message.acked = True


class Verdict(Enum):
    PROCESS = "process"  # in order (or a redelivery of something already processed)
    HOLD_BACK = "hold_back"  # above a hole: do not process, do not ack
    SEEK = "seek"  # above a hole, and it is time to seek back to ``expected``


@dataclass
class _Hole:
    expected: int  # the offset missing
    first_above: int  # the lowest offset that arrived above it
    seeks: int = 0
    last_seek: float = float("-inf")


class OffsetGuard:
    """``committed(partition)`` gives the group's committed offset (the next to read) right
    after an assignment, or None when the group has none (the first record is then accepted)."""

    def __init__(
        self,
        committed: Callable[[int], int | None],
        max_seeks: int = 3,
        reseek_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._committed = committed
        self.max_seeks = max_seeks
        self.reseek_s = reseek_s
        self._clock = clock
        self._next: dict[int, int] = {}  # partition -> next offset to process
        self._holes: dict[int, _Hole] = {}

    def reset(self) -> None:
        """After a rebalance: positions restart from the committed offsets."""
        self._next.clear()
        self._holes.clear()

    def expected(self, partition: int) -> int | None:
        return self._next.get(partition)

    def check(self, partition: int, offset: int) -> Verdict:
        """The verdict for the next record of ``partition``; PROCESS advances the position."""
        nxt = self._next.get(partition)
        if nxt is None:
            nxt = self._committed(partition)
        if nxt is None or offset <= nxt:
            self._accept(partition, offset)
            return Verdict.PROCESS
        hole = self._holes.get(partition)
        if hole is None or hole.expected != nxt:
            hole = self._holes[partition] = _Hole(nxt, offset)
            self._next[partition] = nxt
        hole.first_above = min(hole.first_above, offset)
        now = self._clock()
        if now - hole.last_seek < self.reseek_s:
            return Verdict.HOLD_BACK
        if hole.seeks >= self.max_seeks:
            log.warning(
                "partition %d: offsets %d..%d stayed absent after %d seeks; accepting the hole "
                "(transaction markers, compaction, or records the broker lost)",
                partition,
                nxt,
                hole.first_above - 1,
                hole.seeks,
            )
            # Only the offsets that never came are skipped: the records held back above them
            # (from first_above on) are fetched again and processed, in order.
            self._holes.pop(partition)
            self._next[partition] = hole.first_above
            if offset == hole.first_above:
                self._accept(partition, offset)
                return Verdict.PROCESS
            return Verdict.SEEK
        hole.seeks += 1
        hole.last_seek = now
        log.warning(
            "partition %d: record at offset %d arrived while %d was expected; seeking back (try %d)",
            partition,
            offset,
            nxt,
            hole.seeks,
        )
        return Verdict.SEEK

    def _accept(self, partition: int, offset: int) -> None:
        self._next[partition] = max(offset + 1, self._next.get(partition, 0))
        self._holes.pop(partition, None)


class _EarlierBatchFailed(Exception):
    """A batch before this one failed: this one must not be acked either."""


async def _succeeded(prev: asyncio.Future[bool] | None) -> None:
    if prev is not None and not await asyncio.shield(prev):
        raise _EarlierBatchFailed


class BatchAcks:
    """Steps 1-6 of the module docstring for one worker's events agent.

    ``seek(tp, offset)`` moves the consumer (step 1); ``committed(partition)`` is the group's
    committed offset; ``on_fatal`` stops the worker; ``on_held_back(n)`` counts held-back events.
    ``processed`` maps each events partition to its last processed offset. Only records of
    ``topic`` (the events) are offset-checked: the agent's other topic, the compacted erasures, has
    holes by design (compaction), and a missed erasure is published again by its requester."""

    def __init__(
        self,
        pipeline: BatchPipeline,
        seek: Callable[[Any, int], Awaitable[None]],
        committed: Callable[[int], int | None],
        on_fatal: Callable[[BaseException], None],
        on_held_back: Callable[[int], None],
        topic: str | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.topic = topic  # None: every record is offset-checked
        self._seek, self._on_fatal, self._on_held_back = seek, on_fatal, on_held_back
        self.guard = OffsetGuard(committed)
        self.processed: dict[int, int] = {}
        self._last: asyncio.Future[bool] | None = None  # the newest batch in flight
        self._inflight: set[asyncio.Future[bool]] = set()

    async def submit(self, events: Sequence[Any]) -> None:
        """Steps 1-3 for batch k, then step 4 in a task; returns once batch k-1 has finished."""
        events = await self._in_offset_order(events)
        if not events:
            return
        hold(events)
        try:
            prepared = await self.pipeline.prepare([to_record(e) for e in events])
        except asyncio.CancelledError:
            disown(events)  # stopped mid-batch: redeliver after restart, never commit
            raise
        except Exception as exc:
            disown(events)
            self._on_fatal(exc)
            raise
        prev = self._last
        task = asyncio.ensure_future(self._finish(events, prepared, prev))
        self._last = task
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        if prev is not None:
            await asyncio.shield(prev)

    async def drain(self) -> None:
        """Wait for every batch in flight (the stream ended)."""
        await asyncio.gather(*self._inflight)

    def abandon(self) -> None:
        """Step 6: the agent stopped; batches still in flight are cancelled, never committed."""
        for task in list(self._inflight):
            task.cancel()
        self._last = None

    def reset(self) -> None:
        """Step 6: partitions were (re)assigned; positions restart from the committed offsets."""
        self.guard.reset()

    async def _in_offset_order(self, events: Sequence[Any]) -> list[Any]:
        """Step 1: the events to process now; those above a hole are held back."""
        kept, held_back, seeks = [], [], {}
        for event in events:
            m = event.message
            if self.topic is not None and m.topic != self.topic:
                kept.append(event)
                continue
            verdict = self.guard.check(m.partition, m.offset)
            if verdict is Verdict.PROCESS:
                kept.append(event)
                continue
            held_back.append(event)
            if verdict is Verdict.SEEK:
                seeks[m.tp] = self.guard.expected(m.partition)
        if held_back:
            disown(held_back)
            self._on_held_back(len(held_back))
        for tp, offset in seeks.items():
            await self._seek(tp, offset)
        return kept

    async def _finish(self, events: Sequence[Any], prepared: Prepared, prev: asyncio.Future[bool] | None) -> bool:
        """Steps 4-5: score, write, then release ``events``; False (never acked) if this batch or
        an earlier one failed or was cancelled."""
        try:
            result = await self.pipeline.finish(prepared, before_write=_succeeded(prev))
        except BaseException as exc:
            disown(events)
            if isinstance(exc, Exception) and not isinstance(exc, _EarlierBatchFailed):
                self._on_fatal(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return False
        release(events)
        self.processed.update({p: o for (t, p), o in result.last_offsets.items() if self.topic in (None, t)})
        return True
