"""The trainer continuing from a retrained version (streamrec.trainer.adopt): only newer versions
it did not produce are adopted; the examples it holds move to the new base in order, re-mapped
to its item table (with the feeds their users were shown); the offsets ledger follows, so a
promotion still never commits past an example the new lineage has not trained on; the packed
model directory round-trips."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from pathlib import Path

import pytest
from kafka import TopicPartition
from support.tiny_model import chain_examples, tiny_trained

from streamrec.contracts.feed_digest import feed_digest
from streamrec.contracts.training_batch import Example
from streamrec.encoder.artifact import TrainedModel, pack_model_dir, save_model_dir, unpack_model_dir
from streamrec.encoder.online import OnlineLearner
from streamrec.errors import UserError
from streamrec.settings.encoder import EncoderSettings, TrainerSettings
from streamrec.trainer.adopt import adoptable, rebase
from streamrec.trainer.offsets import TrainedOffsets

TP = TopicPartition("training", 0)


def _learner(trained: TrainedModel, train_item_ids: bool = True) -> OnlineLearner:
    settings = TrainerSettings(holdout_size=16, buffer_size=1000, update_batch=16, train_item_ids=train_item_ids)
    return OnlineLearner(trained, settings, EncoderSettings(n_negatives=8))


def _retrained(drop: str | None = None) -> TrainedModel:
    """Another model over the same items in another row order, optionally without one item."""
    trained = tiny_trained(seed=1)
    order = [i for i in reversed(range(len(trained.item_ids))) if trained.item_ids[i] != drop]
    smaller = tiny_trained(n_items=len(order), seed=1)
    smaller.item_ids[:] = [trained.item_ids[i] for i in order]
    return smaller


def _as_ids(learner: OnlineLearner) -> list[tuple[list[str], str, float, str]]:
    ids = learner.trained.item_ids
    rows = [*learner.buffer, *learner.holdout]
    return [([ids[p] for p in r.prefix], ids[r.target], r.entered_at, r.shown) for r in rows]


def test_only_versions_not_in_the_lineage_are_adopted(tmp_path: Path) -> None:
    (tmp_path / "v-mine").mkdir()
    assert adoptable({"version": "v-new"}, "v-served", tmp_path)
    assert not adoptable({"version": "v-served"}, "v-served", tmp_path), "its own announcement, read back"
    assert not adoptable({"version": "v-mine"}, "v-served", tmp_path), "produced or adopted before"


def test_rebase_keeps_the_examples_in_order_on_the_new_item_table() -> None:
    old = _learner(tiny_trained())
    for k in range(5):
        shown = [dataclasses.replace(ex, shown=feed_digest("v0", [f"i{k}"])) for ex in chain_examples(10, seed=k)]
        old.add(shown, entered_at=float(k))
    for _ in range(3):
        old.step()
    new, kept = rebase(old, _retrained(drop="i5"))
    assert all(kept) and len(kept) == 50
    assert _as_ids(new) == _as_ids(old), "same examples, same order, same entry times, same feeds shown"
    assert len(new.holdout) == len(old.holdout) and len(new.buffer) == len(old.buffer)
    assert not any(r.trained for r in [*new.buffer, *new.holdout]), "the new base has not learned them"
    assert "i5" in new.index, "an item the retrain lacked got a row again (train_item_ids)"
    assert new.step() is not None


def test_dropped_examples_hold_no_offset_back() -> None:
    old, ledger = _learner(tiny_trained(), train_item_ids=False), TrainedOffsets()
    for offset in range(5):
        ledger.add(
            old,
            TP,
            offset,
            [ex for ex in chain_examples(20, seed=offset) if "i5" not in [*ex.items, ex.next_item]][:8],
            0.0,
        )
    to_i5 = [Example(f"u{k}", ["i1", "i2"], ["click"] * 2, "i5", "click", 0.0, f"x{k}") for k in range(8)]
    ledger.add(old, TP, 5, to_i5, 0.0)  # 48 rows: records 4 and 5 are the held-back window
    new, kept = rebase(old, _retrained(drop="i5"))  # without id rows, examples of i5 cannot be mapped
    assert kept == [True] * 40 + [False] * 8
    ledger.rebased(kept)
    while sum(1 for r in new.buffer if not r.trained):
        new.step()
    new.promoted()
    # the new window is the newest 16 kept rows (records 3 and 4); record 5 has no row left
    assert ledger.committable(new)[TP].offset == 3


def test_the_packed_model_directory_round_trips_and_refuses_paths(tmp_path: Path) -> None:
    model_dir = save_model_dir(tmp_path / "model", tiny_trained())
    pack_model_dir(model_dir, tmp_path / "model.tar")
    back = unpack_model_dir(tmp_path / "model.tar", tmp_path / "lineage" / "v1")
    assert back.item_ids == tiny_trained().item_ids
    with tarfile.open(tmp_path / "evil.tar", "w") as tar:
        info = tarfile.TarInfo("../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(UserError, match="not a packed model directory"):
        unpack_model_dir(tmp_path / "evil.tar", tmp_path / "lineage" / "v2")
    assert not (tmp_path / "lineage" / "v2").exists() and not (tmp_path / "escape").exists()
