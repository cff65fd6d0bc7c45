"""Per-partition offset continuity: the worker processes each partition's events in offset
order with no hole, whatever the consumer library delivers.

Why: in reliability runs (a second worker joins, then the first leaves) faust-streaming 0.15.3
now and then never hands one record to the agent around a rebalance or a batch boundary, and
its commit logic (``Consumer._new_offset`` lets the head of the acked list be one above the
committed offset) then commits past it: that event was lost from its user's session. The
events topic is neither compacted nor transactional, so a hole in the offsets the agent sees
is a record that went missing. The guard spots it at the first record past the hole; the
worker then holds back (never acks) everything above the hole and seeks the partition back to
it, so the missing record is fetched again and processed first, in order.

A log can hold real holes (a transactional producer's commit markers, or a compacted topic
set up by mistake): after ``max_seeks`` seeks that bring back nothing at the expected offset
the hole is accepted, with a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

log = logging.getLogger(__name__)


class Verdict(Enum):
    PROCESS = "process"  # in order (or a redelivery of something already processed)
    HOLD_BACK = "hold_back"  # above a hole: do not process, do not ack
    SEEK = "seek"  # above a hole, and it is time to seek back to ``expected``


@dataclass
class _Hole:
    expected: int  # the offset missing
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
            hole = self._holes[partition] = _Hole(nxt)
            self._next[partition] = nxt
        now = self._clock()
        if now - hole.last_seek < self.reseek_s:
            return Verdict.HOLD_BACK
        if hole.seeks >= self.max_seeks:
            log.warning(
                "partition %d: offsets %d..%d stayed absent after %d seeks; accepting the hole "
                "(transaction markers or compaction?)",
                partition,
                nxt,
                offset - 1,
                hole.seeks,
            )
            self._accept(partition, offset)
            return Verdict.PROCESS
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
