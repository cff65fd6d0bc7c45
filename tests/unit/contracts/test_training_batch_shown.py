"""``shown`` in training batches: added within v1 like ``published`` (a batch without it still
decodes), bounded to SHOWN_ITEMS feed items, and anything but a feed digest refused."""

from __future__ import annotations

import json

import pytest

from streamrec.contracts.feed_digest import feed_digest, item_digests, items_in, short_digest
from streamrec.contracts.training_batch import (
    SHOWN_ITEMS,
    Example,
    TrainingBatchError,
    decode_batch,
    encode_batch,
    shown_digest,
)


def _example(shown: str) -> Example:
    return Example("u", ["i1"], ["click"], "i2", "click", 5.0, "e1", 7.25, shown)


def test_shown_round_trips_and_a_batch_without_it_still_decodes() -> None:
    ex = _example(shown_digest(feed_digest("v1", ["i3", "i4"])))
    assert decode_batch(encode_batch("v1", [ex])).examples == [ex]
    old = json.loads(encode_batch("v1", [ex]))
    del old["examples"][0]["shown"]  # what a worker from before hard negatives sends
    assert decode_batch(json.dumps(old).encode()).examples[0].shown == ""


def test_shown_keeps_the_top_of_the_feed_within_the_bound() -> None:
    items = [f"i{n}" for n in range(SHOWN_ITEMS + 30)]
    shown = shown_digest(feed_digest("v1", items))
    assert items_in(shown) == SHOWN_ITEMS
    assert item_digests(shown) == [short_digest(i) for i in items[:SHOWN_ITEMS]]
    assert shown_digest("") == ""


@pytest.mark.parametrize(
    "shown",
    [
        7,  # not a string
        "abc",  # not whole digests
        "!!!!!!!!",  # not base64
        feed_digest("v1", [f"i{n}" for n in range(SHOWN_ITEMS + 1)]),  # over the bound
    ],
)
def test_what_is_not_a_shown_digest_is_refused(shown: object) -> None:
    batch = json.loads(encode_batch("v1", [_example("")]))
    batch["examples"][0]["shown"] = shown
    with pytest.raises(TrainingBatchError, match="shown"):
        decode_batch(json.dumps(batch).encode())
