"""New catalogue items in the online trainer: a new item joins the learner's item table as a
text-only row from the current item tower, close to the item its text resembles; changed text
refreshes a row; unavailable items are not drawn as negatives; a model without a text tower
skips them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from support.tiny_model import chain_examples, tiny_trained
from unit.encoder.test_coldstart import bag_of_words

from streamrec.contracts.items import ItemUpdate, parse_item
from streamrec.encoder.artifact import TrainedModel
from streamrec.encoder.online import OnlineLearner
from streamrec.encoder.trainer import Trainer
from streamrec.sample import generate_sample
from streamrec.settings.encoder import EncoderSettings, TrainerSettings
from streamrec.trainer.items import CatalogueSync

SETTINGS = TrainerSettings(holdout_size=16, buffer_size=1000, update_batch=32, lr=3e-3)


@pytest.fixture(scope="module")
def text_model() -> tuple[TrainedModel, dict[str, str]]:
    """A small model trained offline with a (bag-of-words) text tower, and its item texts."""
    catalogue, log = generate_sample(0, n_users=120, n_items=80)
    settings = EncoderSettings(d_model=32, n_layers=1, epochs=4, lr=3e-3, n_negatives=32, cl_weight=0.0)
    cpu = torch.device("cpu")
    trained = Trainer(log, catalogue, settings, 20, cpu, progress=False, text_encoder=bag_of_words).fit()
    index = catalogue.index()
    return trained, {i: catalogue.text_of(index[i]) for i in trained.item_ids if i in index}


def _item(item_id: str, title: str, category: str, text: str, available: bool = True) -> ItemUpdate:
    value = {"item_id": item_id, "title": title, "category": category, "text": text, "available": available}
    u = parse_item(item_id.encode(), json.dumps(value).encode())
    assert isinstance(u, ItemUpdate)
    return u


def test_new_item_gets_a_cold_row_close_to_the_item_its_text_resembles(
    text_model: tuple[TrainedModel, dict[str, str]],
) -> None:
    trained, texts = text_model
    learner = OnlineLearner(trained, SETTINGS, EncoderSettings(n_negatives=16))
    sync = CatalogueSync(learner, bag_of_words)
    n0 = learner.n_items
    twin = trained.item_ids[3]
    title, category, body = texts[twin].split(". ", 2)
    sync.handle([_item(twin, title, category, body)])  # a known item, unchanged: nothing to embed
    sync.handle([_item("brand-new", title, category, body)])  # a re-release of ``twin``
    assert sync.pump(wait=True) == 1
    assert learner.n_items == n0 + 1 and learner.new_items == 1
    assert trained.item_ids[-1] == "brand-new" and learner.index["brand-new"] == n0
    assert not bool(trained.model.items.warm[n0])  # text-only row

    matrix = trained.item_matrix()  # [N + 1, d], what the next exported version carries
    assert matrix.shape[0] == len(trained.item_ids) == n0 + 1
    row = trained.item_ids.index(twin)
    sims = matrix[:n0] @ matrix[n0]  # [N]: it borrows the trained vectors of its text neighbours, the twin first
    assert int(np.argmax(sims)) == row and sims[row] > 0.8, sims
    # The served copy grew alike: the gate compares both on the same item space.
    assert learner.served.items().shape[0] == n0 + 1

    # A new text for the new item refreshes its row; no new row is added.
    before = matrix[n0].copy()
    sync.handle([_item("brand-new", "Moon dust", "astronomy", "telescope galaxy quasar planet")])
    assert sync.pump(wait=True) == 0
    after = trained.item_matrix()[n0]
    assert learner.n_items == n0 + 1 and not np.allclose(before, after)
    assert trained.config["item_texts"].keys() == {"brand-new"}


def test_examples_with_new_items_train_and_unavailable_items_are_not_negatives() -> None:
    trained = tiny_trained(text_dim=8)
    learner = OnlineLearner(trained, SETTINGS, EncoderSettings(n_negatives=16))
    sync = CatalogueSync(learner, lambda texts: np.ones((len(texts), 8), np.float32))
    sync.handle([_item("fresh", "t", "c", "x", available=False), _item("i5", "t", "c", "x", available=False)])
    sync.pump(wait=True)
    fresh = learner.index["fresh"]
    assert learner.unavailable == {fresh, learner.index["i5"]}
    assert learner._neg_pool is not None and fresh not in set(learner._neg_pool.tolist())
    learner.add(chain_examples(200, seed=1), entered_at=0.0)
    assert learner.step() is not None  # negatives drawn from the grown, masked table
    sync.handle([_item("fresh", "t", "c", "x")])  # available again (same text: no re-embedding)
    assert sync.queue == {} and fresh not in learner.unavailable


def test_with_every_item_unavailable_no_sampled_negative_is_drawn() -> None:
    trained = tiny_trained(text_dim=8)
    learner = OnlineLearner(trained, SETTINGS, EncoderSettings(n_negatives=16))
    learner.set_available(list(learner.index), False)
    row0 = next(item for item, row in learner.index.items() if row == 0)  # the old fallback: never a target here
    learner.add([ex for ex in chain_examples(200, seed=2) if ex.next_item != row0], entered_at=0.0)
    drawn: list[torch.Tensor] = []
    learner.model.items.register_forward_pre_hook(lambda _module, args: drawn.append(args[0]))
    assert learner.step() is not None  # in-batch negatives still train
    targets = {r.target for r in learner.buffer}
    candidates = [rows for rows in drawn if rows is not None and rows.dim() == 1]  # the scored set
    assert candidates and set(candidates[0].tolist()) <= targets  # the batch's own targets only


def test_model_without_text_tower_skips_new_items() -> None:
    learner = OnlineLearner(tiny_trained(), SETTINGS, EncoderSettings(n_negatives=16))
    sync = CatalogueSync(learner, lambda texts: np.ones((len(texts), 8), np.float32))
    sync.handle([_item("fresh", "t", "c", "x")])
    assert sync.pump(wait=True) == 0 and learner.n_items == 40 and learner.new_items == 0


def test_a_trained_row_keeps_its_vector_unless_the_content_changed() -> None:
    """The workers' rule (streamrec.item_refresh): new text for a trained item changes nothing;
    marked content_change, the row is re-embedded and becomes text-only, as workers serve it."""
    trained = tiny_trained(text_dim=8)
    learner = OnlineLearner(trained, SETTINGS, EncoderSettings(n_negatives=16))
    sync = CatalogueSync(learner, lambda texts: np.full((len(texts), 8), 0.5, np.float32))
    before = trained.item_matrix()[learner.index["i3"]].copy()
    sync.handle([_item("i3", "a new title", "c", "new text")])
    assert sync.queue == {} and sync.pump(wait=True) == 0
    assert np.array_equal(trained.item_matrix()[learner.index["i3"]], before)
    changed = _item("i3", "another item now", "c", "other text")
    changed.content_change = True
    sync.handle([changed])
    assert sync.queue == {"i3": changed.text}
    sync.pump(wait=True)
    assert not bool(trained.model.items.warm[learner.index["i3"]])  # text-only from now on
    assert not bool(learner.served.items.warm[learner.index["i3"]])
    assert not np.allclose(trained.item_matrix()[learner.index["i3"]], before)
    sync.handle([_item("i3", "edited", "c", "again")])  # no longer trained: text edits refresh it
    assert "i3" in sync.queue
