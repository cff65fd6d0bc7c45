"""User erasure in the online trainer (streamrec.trainer.erasures), against the real OnlineLearner
and offsets ledger: an erased user's rows published before the erasure leave the replay buffer,
the held-back window and the trained-since-promotion list, their later-published rows stay,
incoming examples published before it are ignored, and the offsets a promotion commits still
never pass a row the served model has not trained on."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kafka import TopicPartition
from prometheus_client import CollectorRegistry, Counter
from support.tiny_model import chain_examples, tiny_trained

from streamrec.contracts.erasure import erasure_records
from streamrec.contracts.training_batch import Example
from streamrec.encoder.online import OnlineLearner
from streamrec.settings.encoder import EncoderSettings, TrainerSettings
from streamrec.trainer.erasures import ErasureLedger, drop_rows
from streamrec.trainer.offsets import TrainedOffsets

TP = TopicPartition("training", 0)


class _Record:
    def __init__(self, key: str, value: bytes, offset: int = 0) -> None:
        self.key, self.value, self.offset = key.encode(), value, offset


def _examples(user: str, n: int, seed: int, published: float | None) -> list[Example]:
    return [replace(ex, user_id=user, published=published) for ex in chain_examples(n, seed=seed)]


def _setup() -> tuple[OnlineLearner, TrainedOffsets, ErasureLedger, Counter]:
    learner = OnlineLearner(
        tiny_trained(),
        TrainerSettings(holdout_size=16, buffer_size=1000, update_batch=16),
        EncoderSettings(n_negatives=8),
    )
    offsets = TrainedOffsets()
    counter = Counter("erased", "erased", registry=CollectorRegistry())
    return learner, offsets, ErasureLedger(counter, offsets), counter


def _users(rows: Any) -> set[str]:
    return {r.user_id for r in rows}


def test_an_erased_users_rows_published_before_the_erasure_go_everywhere() -> None:
    learner, offsets, ledger, counter = _setup()
    offset = 0
    for k in range(10):  # a's and b's rows interleaved; the last records fill the held-back window
        offsets.add(learner, TP, offset, _examples("a", 3, seed=k, published=100.0 + k), 500.0)
        offsets.add(learner, TP, offset + 1, _examples("b", 3, seed=50 + k, published=100.0 + k), 500.0)
        offset += 2
    for _ in range(5):
        learner.step()
    assert "a" in _users(learner.holdout) and "a" in _users(learner.buffer) and "a" in _users(learner.pending)
    ((key, value),) = erasure_records(["a"], 105.5)  # a's rows published at 100..105 go, 106..109 stay
    ledger.record([_Record(key, value)])
    gone = drop_rows(learner, offsets, ledger._erased_row)
    assert gone == 18
    rows = [*learner.buffer, *learner.holdout, *learner.pending]
    assert all(r.user_id == "b" or r.published > 105.5 for r in rows)
    assert sum(r.user_id == "a" for r in [*learner.buffer, *learner.holdout]) == 12
    assert offsets.rows - offsets.evicted_untrained == len(learner.buffer) + len(learner.holdout) == 42
    learner.promoted()
    committed = offsets.committable(learner)[TP].offset
    held = [*learner.buffer, *learner.holdout]
    assert not held[-1].trained and committed < offset, "still never past a row not trained on"
    assert counter._value.get() == 0, "counting is apply()'s job; drop_rows only reports"


def test_incoming_examples_published_before_the_erasure_are_ignored() -> None:
    _learner, _offsets, ledger, counter = _setup()
    ((key, value),) = erasure_records(["a"], 200.0)
    ledger.record([_Record(key, value)])
    batch = [
        *_examples("a", 2, seed=1, published=199.0),
        *_examples("a", 1, seed=2, published=201.0),  # a new session, after the erasure
        *_examples("a", 1, seed=3, published=None),  # an older worker: the batch's time decides
        *_examples("b", 2, seed=4, published=10.0),
    ]
    kept = ledger.keep(batch, entered_at=150.0)
    assert [(ex.user_id, ex.published) for ex in kept] == [("a", 201.0), ("b", 10.0), ("b", 10.0)]
    assert counter._value.get() == 3


def test_a_later_erasure_of_the_same_user_moves_the_cut_and_bad_records_are_skipped() -> None:
    _learner, _offsets, ledger, _counter = _setup()
    first, later = erasure_records(["a"], 100.0)[0], erasure_records(["a"], 300.0)[0]
    assert ledger.record([_Record(*later), _Record(*first), _Record("a", b"{", 7)]) == {"a"}
    assert ledger.erased == {"a": 300.0}
