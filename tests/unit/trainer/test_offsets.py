"""What a promotion commits (streamrec.trainer.offsets), against the real OnlineLearner: never
past a row the promoted version has not trained on (the held-back window, buffered rows no update
drew), always past records whose rows are all learned; per partition; evictions counted."""

from __future__ import annotations

from kafka import TopicPartition
from support.tiny_model import chain_examples, tiny_trained

from streamrec.encoder.online import OnlineLearner
from streamrec.encoder.online_rows import Row
from streamrec.settings.encoder import EncoderSettings, TrainerSettings
from streamrec.trainer.offsets import TrainedOffsets

P0, P1 = TopicPartition("training", 0), TopicPartition("training", 1)


def _learner(**kw: int) -> OnlineLearner:
    settings = TrainerSettings(**{"holdout_size": 16, "buffer_size": 1000, "update_batch": 16, **kw})
    return OnlineLearner(tiny_trained(), settings, EncoderSettings(n_negatives=8))


def _feed(learner: OnlineLearner, ledger: TrainedOffsets, records: list[tuple[TopicPartition, int]], per: int) -> dict:
    """Ingest ``per`` examples per record; returns (tp, offset) -> the rows that record gave."""
    out = {}
    for k, (tp, offset) in enumerate(records):
        n = ledger.add(learner, tp, offset, chain_examples(per, seed=k), 0.0)
        out[(tp, offset)] = [*learner.buffer, *learner.holdout][-n:]
    return out


def _all_learned_below(commit: dict, rows_of: dict[tuple[TopicPartition, int], list[Row]]) -> bool:
    return all(all(r.trained for r in rows) for (tp, off), rows in rows_of.items() if off < commit[tp].offset)


def test_the_held_back_window_is_never_committed() -> None:
    learner, ledger = _learner(), TrainedOffsets()
    _feed(learner, ledger, [(P0, o) for o in range(10)], per=4)  # 40 rows: 24 buffered, 16 held back
    learner.promoted()  # nothing trained yet
    assert ledger.committable(learner)[P0].offset == 0


def test_a_promotion_commits_up_to_the_oldest_row_not_trained_on() -> None:
    learner, ledger = _learner(), TrainedOffsets()
    rows_of = _feed(learner, ledger, [(P0, o) for o in range(100, 160)], per=5)  # 300 rows
    for _ in range(20):
        learner.step()
    learner.promoted()
    commit = ledger.committable(learner)
    assert _all_learned_below(commit, rows_of)
    first_open = min(o for (_tp, o), rows in rows_of.items() if not all(r.trained for r in rows))
    assert commit[P0].offset == first_open <= 156  # the window's 16 rows are in records 156-159


def test_a_rejected_candidate_moves_nothing_and_rows_are_open_again() -> None:
    learner, ledger = _learner(), TrainedOffsets()
    rows_of = _feed(learner, ledger, [(P0, o) for o in range(40)], per=5)
    for _ in range(100):
        learner.step()
    learner.rejected()
    assert ledger.committable(learner)[P0].offset == 0
    assert not any(r.trained for rows in rows_of.values() for r in rows)


def test_partitions_are_committed_each_on_its_own() -> None:
    learner, ledger = _learner(), TrainedOffsets()
    records = [(P1 if k % 2 else P0, 10 + k // 2) for k in range(80)]  # P0 and P1 alternate
    rows_of = _feed(learner, ledger, records, per=4)
    for (tp, offset), rows in rows_of.items():
        for r in rows:
            r.trained = offset < 30 or (tp == P1 and offset < 35)
    commit = ledger.committable(learner)
    assert {tp: c.offset for tp, c in commit.items()} == {P0: 30, P1: 35}
    assert _all_learned_below(commit, rows_of)


def test_everything_learned_commits_past_the_newest_record() -> None:
    learner, ledger = _learner(), TrainedOffsets()
    _feed(learner, ledger, [(P0, 0), (P0, 1)], per=40)
    ledger.skipped(P0, 2)  # an unreadable record: nothing to wait for
    for r in [*learner.buffer, *learner.holdout]:
        r.trained = True
    assert ledger.committable(learner)[P0].offset == 3


def test_rows_pushed_out_of_the_full_buffer_untrained_are_counted_not_waited_for() -> None:
    learner, ledger = _learner(buffer_size=100), TrainedOffsets()
    _feed(learner, ledger, [(P0, o) for o in range(30)], per=5)  # 150 rows: 16 held, 100 buffered, 34 out
    assert ledger.evicted_untrained == 34
    for r in learner.buffer:
        r.trained = True
    assert ledger.committable(learner)[P0].offset == (150 - 16) // 5


def test_updates_draw_untrained_rows_oldest_first_so_the_commit_keeps_up() -> None:
    learner, ledger = _learner(), TrainedOffsets()
    _feed(learner, ledger, [(P0, o) for o in range(60)], per=5)  # 300 rows: 284 buffered, 16 held back
    for _ in range(284 // 8):  # each step: 8 of the freshest, then the 8 oldest untrained
        learner.step()
    assert all(r.trained for r in list(learner.buffer)[: 8 * (284 // 8)])
    assert sum(not r.trained for r in learner.buffer) <= 284 % 8
    learner.promoted()
    assert ledger.committable(learner)[P0].offset >= 56  # up to the record the held-back window starts in
