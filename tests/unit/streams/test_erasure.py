"""User erasure in the worker's pipeline (streams/erasure.py), without a broker: an erasure record
deletes the session (the table's delete, so a tombstone), the feed (after the feed writes of the
batches before it, before its own), the live-metrics digest and the unpublished training
examples; a later event starts an empty session, an event published before the erasure and
consumed after it is dropped; a batch already in flight when the erasure came does not bring
the user's digest or examples back. The table/changelog/Redis path: tests/integration."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from unit.streams.test_live_metrics import _Runner, _Sessions

from streamrec.contracts.erasure import erasure_records
from streamrec.contracts.training_batch import decode_batch
from streamrec.prom import parse
from streamrec.streams.dlq import DeadLetterSink
from streamrec.streams.metrics import WorkerMetrics
from streamrec.streams.model_slot import ModelSlot
from streamrec.streams.pipeline import BatchPipeline, PipelineConfig
from streamrec.streams.records import Record
from streamrec.streams.training import TrainingEmitter

ERASURES = "streamrec.erasures"


class _Table(_Sessions):
    def __init__(self) -> None:
        super().__init__()
        self.tombstones: list[str] = []

    def delete(self, user_id: str, record: Record) -> None:
        self.tombstones.append(user_id)
        self.pop(user_id, None)


class _Feeds:
    def __init__(self) -> None:
        self.log: list[tuple[str, list[str]]] = []

    async def write(self, feeds: list[Any]) -> list[bool]:
        self.log.append(("write", [f.user_id for f in feeds]))
        return [True] * len(feeds)

    async def delete(self, users: list[str]) -> None:
        self.log.append(("delete", list(users)))


def _setup() -> tuple[BatchPipeline, _Table, _Feeds, list[bytes], list[bytes], WorkerMetrics]:
    sent: list[bytes] = []
    dead: list[bytes] = []

    async def send(value: bytes) -> None:
        sent.append(value)

    async def send_dlq(_key: bytes | None, value: bytes) -> None:
        dead.append(value)

    slot = ModelSlot()
    slot.swap(_Runner())  # type: ignore[arg-type]
    config = PipelineConfig(k=20, session_length=8, dedupe_window=16, max_event_bytes=4096, erasure_topic=ERASURES)
    table, feeds, metrics = _Table(), _Feeds(), WorkerMetrics()
    training = TrainingEmitter(send, 1000, 1000.0)
    pipeline = BatchPipeline(config, table, slot, feeds, DeadLetterSink(send_dlq), training, metrics)  # type: ignore[arg-type]
    return pipeline, table, feeds, sent, dead, metrics


def _event(offset: int, user: str, item: str, published: float) -> Record:
    ev = {"event_id": f"e{offset}", "user_id": user, "item_id": item, "ts": 1.0}
    return Record("events", 0, offset, published, user.encode(), json.dumps(ev).encode())


def _erasure(offset: int, user: str, at: float, key: bytes | None = None) -> Record:
    ((k, value),) = erasure_records([user], at)
    return Record(ERASURES, 0, offset, at, k.encode() if key is None else key, value)


def _counter(metrics: WorkerMetrics, name: str) -> float | None:
    return parse(metrics.exposition().decode()).get(name)


def test_an_erasure_deletes_session_feed_live_state_and_unpublished_examples() -> None:
    p, table, feeds, sent, _dead, metrics = _setup()
    asyncio.run(p.process([_event(0, "u", "i1", 100.0), _event(1, "u", "i2", 101.0), _event(2, "v", "i1", 101.0)]))
    asyncio.run(p.process([_event(3, "v", "i2", 102.0)]))
    assert table["u"]["i"] == ["i1", "i2"] and p.training.pending == 2  # u's and v's second events
    asyncio.run(
        p.process(
            [
                _erasure(0, "u", 200.0),
                _event(4, "u", "i3", 201.0),  # after the erasure: a new, empty session
                _event(5, "u", "i4", 150.0),  # published before it, consumed after: dropped
            ]
        )
    )
    assert table.tombstones == ["u"]
    assert table["u"]["i"] == ["i3"], "a later event starts a new, empty session"
    assert "f" not in table["u"], "no digest of a feed from before the erasure"
    assert table["v"]["i"] == ["i1", "i2"], "other users untouched"
    assert feeds.log[-2:] == [("delete", ["u"]), ("write", ["u"])], "the old feed goes before the new one is written"
    assert [ex.user_id for ex in p.training._buffer] == ["v"], "u's unpublished example went"
    assert sent == []
    assert _counter(metrics, "streamrec_erasures_total") == 1
    assert _counter(metrics, "streamrec_events_total") == 6, "an erasure is not an event"
    assert _counter(metrics, "streamrec_erased_events_total") == 1


def test_a_batch_in_flight_does_not_bring_the_erased_user_back() -> None:
    p, table, feeds, _sent, _dead, _metrics = _setup()

    async def run() -> None:
        await p.process([_event(0, "u", "i1", 100.0)])
        batch_k = await p.prepare([_event(1, "u", "i2", 101.0)])  # scored while k+1 is prepared
        batch_k1 = await p.prepare([_erasure(0, "u", 200.0)])
        await p.finish(batch_k)
        await p.finish(batch_k1)

    asyncio.run(run())
    assert "u" not in table
    assert feeds.log[-2:] == [("write", ["u"]), ("delete", ["u"])], "the feed of batch k is deleted after its write"
    assert p.live.last_feed("u", "") == "", "batch k's digest was not remembered"
    assert p.training.pending == 0, "batch k's example of u was not queued"


def test_unpublished_examples_are_dropped_and_published_ones_carry_their_publish_time() -> None:
    p, _table, _feeds, sent, _dead, _metrics = _setup()
    p.training.every_n = 1
    asyncio.run(p.process([_event(0, "u", "i1", 100.0), _event(1, "u", "i2", 101.5)]))
    (example,) = decode_batch(sent[0]).examples
    assert example.user_id == "u" and example.published == 101.5


def test_a_bad_or_misrouted_erasure_is_a_dead_letter_and_erases_nothing() -> None:
    p, table, _feeds, _sent, dead, _metrics = _setup()
    asyncio.run(p.process([_event(0, "u", "i1", 100.0)]))
    bad = Record(ERASURES, 0, 1, 1.0, b"u", b"{not json")
    asyncio.run(p.process([_erasure(0, "u", 200.0, key=b"someone-else"), bad]))
    assert table["u"]["i"] == ["i1"] and table.tombstones == []
    reasons = [json.loads(d)["reason"] for d in dead]
    assert len(reasons) == 2 and "is not the erasure's user_id" in reasons[0] and "malformed JSON" in reasons[1]
