"""The foundation against real servers: topics are created, events produced with the
safe producer come back from a consumer in per-user order, feeds round-trip through Redis."""

from __future__ import annotations

import json

import pytest

from streamrec.contracts.feed import Feed
from streamrec.feed_store import get_feed, redis_client, write_feeds
from streamrec.kafka import EventProducer, ensure_topics, read_topic
from streamrec.local.services import EmbeddedServices

pytestmark = pytest.mark.integration


def test_produced_events_come_back_in_per_user_order(services: EmbeddedServices, unique_prefix: str) -> None:
    topic = f"{unique_prefix}.events"
    ensure_topics(services.broker, {topic: (3, False)})
    events = [{"event_id": f"e{i}", "user_id": f"u{i % 5}", "item_id": f"i{i}", "ts": 1000 + i} for i in range(50)]
    with EventProducer(services.broker, topic) as producer:
        for ev in events:
            producer.send(ev["user_id"], ev)
    assert producer.report.delivered == 50 and not producer.report.failed

    got = [json.loads(m.value) for m in read_topic(services.broker, topic, min_count=50)]
    assert sorted(e["event_id"] for e in got) == sorted(e["event_id"] for e in events)
    for user in {e["user_id"] for e in events}:
        ids = [e["event_id"] for e in got if e["user_id"] == user]
        assert ids == [e["event_id"] for e in events if e["user_id"] == user]


def test_compacted_topic_is_created(services: EmbeddedServices, unique_prefix: str) -> None:
    from kafka import KafkaAdminClient

    ensure_topics(services.broker, {f"{unique_prefix}.models": (1, True)})
    ensure_topics(services.broker, {f"{unique_prefix}.models": (1, True)})  # idempotent
    admin = KafkaAdminClient(bootstrap_servers=services.broker)
    assert f"{unique_prefix}.models" in admin.list_topics()
    admin.close()


def _feed(user: str, offset: int, items: list[str]) -> Feed:
    return Feed(user, items, [1.0 / (r + 1) for r in range(len(items))], "v1", 1.0, f"e{offset}", 0, offset)


def test_feed_is_replaced_atomically_and_never_moves_backwards(services: EmbeddedServices, unique_prefix: str) -> None:
    r = redis_client(services.redis)
    prefix = f"{unique_prefix}:feed:"
    assert write_feeds(r, prefix, [_feed("alice", 10, ["a", "b"])], ttl_s=60) == [True]
    assert write_feeds(r, prefix, [_feed("alice", 7, ["old"])], ttl_s=60) == [False]
    assert get_feed(r, "alice", prefix).items == ["a", "b"]
    assert write_feeds(r, prefix, [_feed("alice", 11, ["c"])], ttl_s=60) == [True]
    feed = get_feed(r, "alice", prefix)
    assert feed.items == ["c"] and feed.offset == 11
    assert 0 < r.ttl(prefix + "alice") <= 60
    assert get_feed(r, "nobody", prefix) is None


def test_user_id_cannot_escape_the_feed_namespace(services: EmbeddedServices, unique_prefix: str) -> None:
    r = redis_client(services.redis)
    prefix = f"{unique_prefix}:feed:"
    evil = "x\r\nSET owned 1\r\n*:../other"
    write_feeds(r, prefix, [_feed(evil, 1, ["a"])], ttl_s=60)
    keys = [k.decode() for k in r.scan_iter(f"{unique_prefix}*")]
    assert len(keys) == 1 and keys[0].startswith(prefix) and ":" not in keys[0][len(prefix) :]
    assert r.get("owned") is None
    assert get_feed(r, evil, prefix).user_id == evil
