"""Pure parts of the stream worker: session bounds and dedupe, MMR, training-batch format,
dead-letter envelope, the training emitter's cadence, and the feed sink's retry."""

from __future__ import annotations

import asyncio

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from streamrec.contracts.dead_letters import parse_dead_letter
from streamrec.contracts.events import Event
from streamrec.contracts.feed import Feed
from streamrec.contracts.training_batch import Example, TrainingBatchError, decode_batch, encode_batch
from streamrec.streams.dlq import envelope
from streamrec.streams.feed_sink import FeedSink
from streamrec.streams.records import Record
from streamrec.streams.session import Session, apply_event
from streamrec.streams.training import TrainingEmitter

ids = st.text(alphabet="abcdef", min_size=1, max_size=3)


@given(st.lists(st.tuples(ids, ids), max_size=60), st.integers(2, 10), st.integers(1, 20))
def test_session_is_bounded_and_applies_each_event_id_once(pairs: list, session_length: int, window: int) -> None:
    s = Session.empty()
    applied = []
    for event_id, item in pairs + pairs:  # every event delivered twice
        ev = Event(event_id, "u", item, "click", 1.0)
        if apply_event(s, ev, session_length, window):
            applied.append(item)
    assert len(s.items) <= session_length and len(s.recent_ids) <= window
    assert s.items == applied[-session_length:] if applied else s.items == []
    assert len(s.items) == len(s.types) == len(s.ts)
    assert Session.from_value(s.to_value()) == s


def test_redelivery_within_the_window_is_not_applied_twice() -> None:
    s = Session.empty()
    evs = [Event(f"e{i}", "u", f"i{i}", "view", float(i)) for i in range(5)]
    for ev in evs + evs[2:]:
        apply_event(s, ev, 50, 128)
    assert s.items == ["i0", "i1", "i2", "i3", "i4"]


def test_a_session_stored_with_raw_event_ids_still_dedupes_them() -> None:
    """Values written before ids were kept as digests: a replay of those events is a duplicate."""
    old = {"i": ["i0", "i1"], "t": ["view", "view"], "s": [0.0, 1.0], "e": ["e0", "e1"]}
    s = Session.from_value(old)
    assert not apply_event(s, Event("e1", "u", "i1", "view", 1.0), 50, 128)
    assert apply_event(s, Event("e2", "u", "i2", "view", 2.0), 50, 128)
    assert s.items == ["i0", "i1", "i2"] and all(isinstance(e, int) for e in s.to_value()["e"])


def test_training_batch_round_trips_and_refuses_other_versions() -> None:
    ex = Example("u", ["a", "b"], ["view", "click"], "c", "cart", 12.5, "e3")
    batch = decode_batch(encode_batch("v1", [ex]))
    assert batch.model_version == "v1" and batch.examples == [ex]
    with pytest.raises(TrainingBatchError, match="version"):
        decode_batch(b'{"v": 2, "examples": []}')
    with pytest.raises(TrainingBatchError):
        decode_batch(b'{"v": 1, "examples": [{"user_id": "u"}]}')


@given(st.binary(max_size=300), st.one_of(st.none(), st.binary(max_size=20)))
def test_dead_letter_keeps_the_original_bytes(value: bytes, key: bytes | None) -> None:
    rec = Record("events", 3, 41, 1.5, key, value)
    dl = parse_dead_letter(envelope(rec, "malformed JSON"))
    assert (dl.value, dl.reason, dl.partition, dl.offset, dl.topic) == (value, "malformed JSON", 3, 41, "events")
    if key is not None:
        assert dl.key == key.decode("utf-8", "replace").encode()


def test_training_emitter_flushes_every_n_or_t_seconds() -> None:
    sent: list[bytes] = []
    now = [0.0]

    async def send(value: bytes) -> None:
        sent.append(value)

    em = TrainingEmitter(send, every_n=3, every_s=5.0, clock=lambda: now[0])
    ex = Example("u", ["a"], ["click"], "b", "click", 1.0, "e")

    async def scenario() -> None:
        em.add([ex] * 7, "v1")
        assert await em.maybe_flush() == 6 and em.pending == 1
        assert await em.maybe_flush() == 0
        now[0] = 5.0
        assert await em.maybe_flush() == 1 and em.pending == 0

    asyncio.run(scenario())
    assert [len(decode_batch(b).examples) for b in sent] == [3, 3, 1]


class _FlakyRedis:
    """Fails the first ``n`` round trips like a stopped Redis, then behaves."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0

    def register_script(self, _src: str):
        return lambda keys, args, client: client.calls_made.append((keys, args))

    def pipeline(self, transaction: bool = False):
        outer = self

        class Pipe:
            def __init__(self) -> None:
                self.calls_made: list = []

            def execute(self) -> list[int]:
                outer.calls += 1
                if outer.calls <= outer.n:
                    raise redis.ConnectionError("connection refused")
                return [1] * len(self.calls_made)

        return Pipe()


def test_feed_sink_retries_until_redis_answers_without_dropping_feeds() -> None:
    client = _FlakyRedis(3)
    errors: list[BaseException] = []
    sink = FeedSink(client, "p:", 60, base_s=0.001, max_s=0.004, on_error=errors.append)  # type: ignore[arg-type]
    feeds = [Feed(f"u{i}", ["a"], [1.0], "v", 0.0, "e", 0, i) for i in range(3)]
    assert asyncio.run(sink.write(feeds)) == [True, True, True]
    assert client.calls == 4 and len(errors) == 3
