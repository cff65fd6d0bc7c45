"""User erasure in the worker: a record of ``streamrec.erasures`` deletes the user's session,
feed, live-metrics state and unpublished training examples (docs/privacy.md).

Where it runs, and why there. The session table is partitioned by user: partition p of its
changelog belongs to the worker that owns partition p of the events topic, and faust picks the
changelog partition of a write from the event being processed. The erasure topic has the events
topic's partition count and the same key (the user id), so faust's assignor hands partition p of
both topics to the same worker (co-partitioned topics of one agent), and the worker's one events
agent consumes both: an erasure is one more record of a micro-batch, applied by the pipeline in
the order it was consumed, on the worker that owns the user's session. Its table delete writes
the tombstone to the user's changelog partition, and no other task can write the session back
in between (sessions change only in the agent's ``prepare``, one batch at a time).

What a batch already in flight holds. The worker scores batch k while it prepares batch k+1, so
an erasure in batch k+1 can meet a user whose feed batch k is still computing: the Redis delete
runs in batch k+1's ``finish``, after batch k's feed write (batches write in order), and batch
k's training examples and live-metrics digest of an erased user are dropped when it finishes
(:meth:`ErasedUsers.since`, by batch sequence number).

Events published before the erasure but consumed after it (the events topic lagging the erasure
topic) would rebuild the old session: the worker remembers recent erasures
(:data:`KEPT` users, least recently erased forgotten first) and drops such events, counted in
``streamrec_erased_events_total`` and not dead-lettered (the DLQ would keep them). After a
restart only erasures consumed since count; what the events topic still holds is bounded by its
retention (docs/privacy.md).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from streamrec.contracts.erasure import Erasure, parse_erasure
from streamrec.contracts.training_batch import Example
from streamrec.streams.live_metrics import LiveMetrics
from streamrec.streams.metrics import WorkerMetrics
from streamrec.streams.records import Record
from streamrec.streams.training import TrainingEmitter

# Recent erasures kept in memory, ~100 bytes each (10 MB): enough to cover the events topic's
# lag behind the erasure topic for any realistic erasure rate.
KEPT = 100_000


class Batch(Protocol):
    """What :meth:`Eraser.erase` changes of a micro-batch being prepared (the pipeline's
    ``Prepared``): its touched sessions, its examples, its sequence number, its erased users."""

    touched: dict[str, Any]
    examples: list[Example]
    seq: int
    erased: list[str]


class ErasingStore(Protocol):
    """The session store's delete (the faust table: ``del`` writes the changelog tombstone)."""

    def delete(self, user_id: str, record: Record) -> None: ...


class ErasedUsers:
    """Recent erasures: user -> (requested_at, sequence number of the batch that applied it)."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._erased: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def record(self, erasure: Erasure, seq: int) -> None:
        self._erased[erasure.user_id] = (erasure.requested_at, seq)
        self._erased.move_to_end(erasure.user_id)
        while len(self._erased) > self.kept:
            self._erased.popitem(last=False)

    def before(self, user_id: str, published: float) -> bool:
        """An event of ``user_id`` published at ``published`` is older than their erasure."""
        seen = self._erased.get(user_id)
        return seen is not None and published < seen[0]

    def since(self, seq: int) -> Callable[[str], bool]:
        """Whether a user was erased by a batch prepared after batch ``seq``."""

        def erased(user_id: str) -> bool:
            seen = self._erased.get(user_id)
            return seen is not None and seen[1] > seq

        return erased


class Eraser:
    """Applies erasure records for the pipeline (``prepare``, event loop only)."""

    def __init__(
        self, sessions: ErasingStore, live: LiveMetrics, training: TrainingEmitter, metrics: WorkerMetrics
    ) -> None:
        self.sessions = sessions
        self.live = live
        self.training = training
        self.metrics = metrics
        self.recent = ErasedUsers()

    def erase(self, rec: Record, batch: Batch) -> str | None:
        """Erase the user of ``rec`` from the table, from ``batch`` (its sessions and examples so
        far), the live metrics and the unpublished training examples, and add them to
        ``batch.erased`` (the pipeline deletes their feed after the feed writes of the batches
        before); returns a dead-letter reason for a record that is not an erasure."""
        outcome = parse_erasure(rec.key, rec.value)
        if isinstance(outcome, str):
            return f"erasure: {outcome}"
        user = outcome.user_id
        self.sessions.delete(user, rec)
        batch.touched.pop(user, None)
        batch.examples[:] = [ex for ex in batch.examples if ex.user_id != user]
        batch.erased.append(user)
        self.live.forget(user)
        self.training.forget({user})
        self.recent.record(outcome, batch.seq)
        self.metrics.erasures.inc()
        return None

    def drops(self, user_id: str, published: float) -> bool:
        """An event published before its user's (recent) erasure: dropped, counted, not
        dead-lettered (the DLQ would keep it)."""
        if not self.recent.before(user_id, published):
            return False
        self.metrics.erased_events.inc()
        return True
