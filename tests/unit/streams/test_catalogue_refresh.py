"""The catalogue overlay never overwrites a trained vector: a catalogue update refreshes an
item's vector only when the item has no trained row or the update is marked content_change
(streamrec.item_refresh, the rule the trainer applies too); a text embedded by one text tower is
re-embedded for a runner with another instead of being carried into a different item space."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from streamrec.contracts.items import ItemUpdate, parse_item
from streamrec.item_refresh import refreshes_vector
from streamrec.streams.catalogue import CatalogueOverlay
from streamrec.streams.cold_start import embed_updates


@dataclass
class _Runner:
    """What the overlay calls, over a dict of vectors (d = 2)."""

    trained_ids: set[str]
    text_digest: str | None = "tower-a"
    version: str = "v1"
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    unavailable: set[str] = field(default_factory=set)

    def trained(self, ids: Sequence[str]) -> list[bool]:
        return [i in self.trained_ids for i in ids]

    def text_vectors(self, texts: Sequence[str]) -> np.ndarray | None:
        if self.text_digest is None:
            return None
        return np.asarray([[len(t), 1.0 if self.text_digest == "tower-a" else -1.0] for t in texts], np.float32)

    def upsert_items(self, ids: Sequence[str], vectors: np.ndarray) -> int:
        self.vectors.update(zip(ids, vectors, strict=True))
        return len(ids)

    def set_available(self, ids: Sequence[str], flag: bool) -> None:
        self.unavailable = self.unavailable - set(ids) if flag else self.unavailable | set(ids)


def _update(overlay: CatalogueOverlay, runner: _Runner, *updates: ItemUpdate) -> list[str]:
    """What WorkerRuntime._on_items does; returns the ids embedded from text."""
    cold = overlay.to_embed(runner, list(updates))
    embedded = embed_updates(runner, cold)
    overlay.record(list(updates), embedded, runner.text_digest)
    overlay.apply(runner, list(updates))
    return [u.item_id for u in cold]


def test_the_rule() -> None:
    plain, changed = ItemUpdate("a", True, "text"), ItemUpdate("a", True, "text", content_change=True)
    assert refreshes_vector(plain, trained=False) and refreshes_vector(changed, trained=False)
    assert not refreshes_vector(plain, trained=True) and refreshes_vector(changed, trained=True)
    msg = parse_item(b"a", b'{"item_id": "a", "title": "t", "content_change": true}')
    assert isinstance(msg, ItemUpdate) and msg.content_change


def test_a_trained_vector_is_never_overwritten_by_text_or_a_message_vector() -> None:
    runner, overlay = _Runner({"trained"}), CatalogueOverlay()
    assert _update(overlay, runner, ItemUpdate("trained", True, "new text"), ItemUpdate("new", True, "hello")) == [
        "new"
    ]
    _update(overlay, runner, ItemUpdate("trained", True, "newer text", vector=[9.0, 9.0]))
    assert set(runner.vectors) == {"new"}  # the trained row kept its vector
    # Marked as a content change: refreshed from its text, and from then on it is text-only here.
    assert _update(overlay, runner, ItemUpdate("trained", True, "other item now", content_change=True)) == ["trained"]
    assert _update(overlay, runner, ItemUpdate("trained", True, "edited again")) == ["trained"]
    assert runner.vectors["trained"][0] == len("edited again")


def test_an_unchanged_text_is_not_embedded_again_and_availability_still_applies() -> None:
    runner, overlay = _Runner(set()), CatalogueOverlay()
    assert _update(overlay, runner, ItemUpdate("n", True, "hello")) == ["n"]
    assert _update(overlay, runner, ItemUpdate("n", False, "hello")) == []
    assert "n" in runner.unavailable
    assert _update(overlay, runner, ItemUpdate("n", True, "hello")) == []
    assert "n" not in runner.unavailable and runner.vectors["n"][1] == 1.0


def test_a_runner_with_another_text_tower_gets_text_vectors_re_embedded() -> None:
    old, overlay = _Runner(set()), CatalogueOverlay()
    _update(overlay, old, ItemUpdate("n", True, "hello"), ItemUpdate("m", True, None, vector=[3.0, 4.0]))
    new = _Runner({"m"}, text_digest="tower-b", version="v2")
    stale = overlay.stale(new)
    assert [u.item_id for u in stale] == ["n"]
    overlay.replay_onto(new, embed_updates(new, stale))
    assert new.vectors["n"][1] == -1.0  # from the new tower, not the old one's space
    assert "m" not in new.vectors  # the new model trained "m": its row is kept
    # A model without a text tower: text-only items are not given another space's vector.
    bare = _Runner(set(), text_digest=None, version="v3")
    assert overlay.stale(bare) == []
    overlay.replay_onto(bare)
    assert set(bare.vectors) == {"m"}


def test_items_read_before_the_first_model_are_embedded_when_it_arrives() -> None:
    overlay = CatalogueOverlay()
    overlay.record([ItemUpdate("early", True, "hello"), ItemUpdate("t", True, "trained one")], {}, None)
    first = _Runner({"t"})
    stale = overlay.stale(first)
    assert [u.item_id for u in stale] == ["early"]
    overlay.replay_onto(first, embed_updates(first, stale))
    assert set(first.vectors) == {"early"}
