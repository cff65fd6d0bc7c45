"""Which training-topic offsets a promotion may commit.

A committed offset tells a restarted trainer "everything before this is learned". The learner
holds back its newest rows (the gate's window, never trained on) and keeps older ones in a replay
buffer where a row is trained only once an update has drawn it, so at a promotion the newest
*consumed* offset is not the newest *learned* one: committing it would lose the held-back and the
not yet drawn rows at a restart. This ledger maps the learner's rows back to the records they came
from and commits, per partition, the offset of the oldest record that still has a row the served
model has not trained on.

Rows are numbered in the order the learner received them: its buffer then its window hold the
newest rows, in that order (one FIFO). Delivery stays at-least-once: records after that oldest one are read
again after a restart, including rows already learned. A row that leaves the full replay buffer
without ever being drawn is not waited for (it would hold the offset back for ever); those are
counted (``evicted_untrained``; a larger ``trainer.buffer_size`` or update rate keeps it at 0).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import accumulate, islice

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from streamrec.config import Settings
from streamrec.contracts.training_batch import Example
from streamrec.encoder.online import OnlineLearner
from streamrec.encoder.online_rows import Row
from streamrec.kafka import security_kwargs


@dataclass(frozen=True)
class _Record:
    tp: TopicPartition
    offset: int
    start_row: int  # its rows are numbered start_row .. end_row - 1
    end_row: int


class TrainedOffsets:
    """Records consumed and the rows each gave the learner, oldest first."""

    def __init__(self) -> None:
        self.rows = 0  # rows the learner received, all records together
        self.evicted_untrained = 0  # rows that left the full replay buffer never drawn
        self._records: deque[_Record] = deque()
        self._next: dict[TopicPartition, int] = {}  # per partition: the offset after the newest record

    def add(
        self, learner: OnlineLearner, tp: TopicPartition, offset: int, examples: Sequence[Example], entered_at: float
    ) -> int:
        """Give ``learner`` the examples of the record at ``tp``/``offset``; returns the rows it took."""
        head = list(islice(learner.buffer, len(examples)))  # the rows this add can push out
        before = self._gone(learner)
        n = learner.add(examples, entered_at)
        self._records.append(_Record(tp, offset, self.rows, self.rows + n))
        self.rows += n
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)
        self.evicted_untrained += sum(1 for r in head[: self._gone(learner) - before] if not r.trained)
        return n

    def skipped(self, tp: TopicPartition, offset: int) -> None:
        """A record that gave the learner nothing (unreadable)."""
        self._records.append(_Record(tp, offset, self.rows, self.rows))
        self._next[tp] = max(self._next.get(tp, 0), offset + 1)

    def _gone(self, learner: OnlineLearner) -> int:
        """Rows received that are no longer in the learner (its buffer then window hold the newest)."""
        return self.rows - len(learner.buffer) - len(learner.holdout)

    def rebased(self, kept: Sequence[bool]) -> None:
        """The learner was rebuilt from its rows (buffer then window, oldest first), keeping those
        marked in ``kept`` (:func:`streamrec.trainer.adopt.rebase`): renumber so every record still
        maps to its own rows; a record whose rows were all dropped holds nothing back."""
        gone = self.rows - len(kept)
        first = list(accumulate(map(int, kept), initial=gone))  # new number of the row at each old position

        def renumber(n: int) -> int:
            return n if n < gone else first[n - gone]

        self._records = deque(
            replace(r, start_row=renumber(r.start_row), end_row=renumber(r.end_row)) for r in self._records
        )
        self.rows = first[-1]

    def committable(self, learner: OnlineLearner) -> dict[TopicPartition, OffsetAndMetadata]:
        """Per partition, the offset to commit right after a promotion (every trained row is then
        learned by the served model, and stays so): the oldest record with a row not trained on,
        else past the newest record."""
        rows: list[Row] = [*learner.buffer, *learner.holdout]
        gone = self._gone(learner)
        # open: not trained, or trained after the promoted weights were frozen (a canary's trial)
        pending = {id(r) for r in learner.pending}
        open_rows = [gone + i for i, r in enumerate(rows) if not r.trained or id(r) in pending]  # ascending

        def is_open(r: _Record) -> bool:
            k = bisect_left(open_rows, r.start_row)
            return k < len(open_rows) and open_rows[k] < r.end_row

        while self._records and not is_open(self._records[0]):
            self._records.popleft()  # learned for good: never needed again
        out = dict(self._next)
        for r in self._records:
            if is_open(r):
                out[r.tp] = min(out[r.tp], r.offset)
        return {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in out.items()}


def training_consumer(s: Settings) -> KafkaConsumer:
    """The trainer's consumer of the training topic: nothing auto-committed (see the module)."""
    return KafkaConsumer(
        s.topics.training,
        bootstrap_servers=s.broker,
        group_id=s.trainer.group_id,
        enable_auto_commit=False,  # committed after a promotion only, up to what it learned
        auto_offset_reset="earliest",
        session_timeout_ms=int(s.worker.session_timeout_s * 1000),
        heartbeat_interval_ms=max(int(s.worker.session_timeout_s * 1000) // 3, 100),
        max_partition_fetch_bytes=8 * 1024 * 1024,
        **security_kwargs(s.kafka_security),
    )
