"""User erasure in the online trainer (docs/privacy.md).

The trainer reads ``streamrec.erasures`` from its first offset, as it reads the catalogue: the
topic is compacted, so the replay is one record per erased user, and the trainer knows every
erased user and when at every start. Training examples are read only once that replay is done.

An example is erased when its user is and it was published before the erasure
(:mod:`streamrec.contracts.erasure`; by its source event's Kafka timestamp, or, from a worker that
does not send it, by its training batch's). Erased examples are dropped from the replay buffer,
the held-back window and the rows trained since the last promotion, and ignored when they arrive
later (a training topic replayed after a restart still holds them until its retention ends).
Rows an update already drew stay learned in the candidate's weights, and promoted versions keep
what they learned: weights are not erased (docs/privacy.md).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import ConsumerRecord
from prometheus_client import Counter

from streamrec.contracts.erasure import latest_erasures
from streamrec.contracts.training_batch import Example
from streamrec.encoder.online import OnlineLearner
from streamrec.encoder.online_rows import Row
from streamrec.follow import FollowerThread
from streamrec.trainer.offsets import TrainedOffsets


class ErasureLedger:
    """Every erased user -> the time of their latest erasure (epoch seconds)."""

    def __init__(self, erased_examples: Counter, offsets: TrainedOffsets) -> None:
        self.erased: dict[str, float] = {}
        self.offsets = offsets  # the ledger of the rows the learner holds: renumbered as rows go
        self._counted = erased_examples
        self._reader: FollowerThread | None = None

    def follow(self, bootstrap: str, topic: str, **client_kwargs: Any) -> None:
        self._reader = FollowerThread(bootstrap, topic, **client_kwargs)

    def record(self, records: Iterable[ConsumerRecord]) -> set[str]:
        """Take erasure records in; returns the users erased by them."""
        new = latest_erasures(records)
        for user, at in new.items():
            self.erased[user] = max(at, self.erased.get(user, at))
        return set(new)

    def apply(self, learner: OnlineLearner, wait_s: float = 0.2) -> bool:
        """Erasures read since the last call: the learner's rows of their users go. Returns whether
        the topic's replay had been read before (training examples may be read now); if not, it
        waits ``wait_s`` first (the trainer's loop polls nothing else meanwhile)."""
        if self._reader is None:
            return False
        replayed = self._reader.follower.caught_up.is_set()  # before the drain: then it holds the replay
        if self.record(self._reader.drain()):
            self._counted.inc(drop_rows(learner, self.offsets, self._erased_row))
        if not replayed:
            time.sleep(wait_s)
        return replayed

    def keep(self, examples: Iterable[Example], entered_at: float) -> list[Example]:
        """The examples of a training batch published at ``entered_at`` that are not erased."""
        examples = list(examples)
        kept = [ex for ex in examples if not self._erased_at(ex.user_id, ex.published, entered_at)]
        self._counted.inc(len(examples) - len(kept))
        return kept

    def _erased_at(self, user_id: str, published: float | None, entered_at: float) -> bool:
        at = self.erased.get(user_id)
        return at is not None and (entered_at if published is None else published) < at

    def _erased_row(self, row: Row) -> bool:
        return self._erased_at(row.user_id, row.published, row.entered_at)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def drop_rows(learner: OnlineLearner, offsets: TrainedOffsets, erased: Callable[[Row], bool]) -> int:
    """Remove the rows ``erased(row)`` names from the learner's replay buffer, held-back window and
    trained-since-promotion list, renumbering the offsets ledger; returns how many went."""
    rows = [*learner.buffer, *learner.holdout]
    kept = [not erased(r) for r in rows]
    if all(kept):
        return 0
    learner.buffer = deque((r for r in learner.buffer if not erased(r)), maxlen=learner.buffer.maxlen)
    learner.holdout = deque((r for r in learner.holdout if not erased(r)), maxlen=learner.holdout.maxlen)
    learner.pending = [r for r in learner.pending if not erased(r)]
    for r, k in zip(rows, kept, strict=True):
        if not k:
            learner.pop[r.target] -= 1  # the item popularity of logQ counts the examples held
    offsets.rebased(kept)
    return kept.count(False)
