"""Training examples record what was shown: each carries the digest of the feed its user held just
before the event (two events in one batch both held the same feed), a restarted worker takes it
from the session, and a user who never had a feed records none."""

from __future__ import annotations

import asyncio

from unit.streams.test_live_metrics import ITEMS, _rec, _Sessions
from unit.streams.test_live_metrics import _pipeline as live_pipeline

from streamrec.contracts.feed_digest import feed_digest
from streamrec.contracts.training_batch import Example, decode_batch
from streamrec.streams.metrics import WorkerMetrics
from streamrec.streams.pipeline import BatchPipeline


def _pipeline(sessions: _Sessions, sent: list[Example]) -> BatchPipeline:
    async def send(value: bytes) -> None:
        sent.extend(decode_batch(value).examples)  # through the wire format, as the trainer reads it

    return live_pipeline(sessions, WorkerMetrics(), send, every=1)


def test_examples_record_the_feed_held_before_the_event() -> None:
    sessions, sent = _Sessions(), []
    p = _pipeline(sessions, sent)
    asyncio.run(p.process([_rec(0, "i29"), _rec(1, "i25")]))  # no feed before either; then i0..i19
    asyncio.run(p.process([_rec(2, "i2"), _rec(3, "i7")]))  # both held i0..i19
    asyncio.run(p.process([_rec(4, "i4")]))  # held the feed after i2, i7: i0, i1, i3..i6, i8..i21
    first = feed_digest("v1", ITEMS[:20])
    after = feed_digest("v1", [i for i in ITEMS if i not in {"i29", "i25", "i2", "i7"}][:20])
    assert [(ex.next_item, ex.shown) for ex in sent] == [("i25", ""), ("i2", first), ("i7", first), ("i4", after)]
    restarted: list[Example] = []  # an empty memory: the digest comes from the session's changelog value
    asyncio.run(_pipeline(sessions, restarted).process([_rec(5, "i9")]))
    assert [ex.shown for ex in restarted] == [sessions["u"]["f"]] and restarted[0].shown
