"""The stream worker against the real broker, Redis and a real exported model: events in ->
feeds out with the expected items; a poison event goes to the DLQ while the rest flow;
duplicate delivery does not duplicate session items; an older computation never overwrites
a newer feed; training batches and catalogue updates flow."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support.worker_harness import (
    K,
    WorkerEnv,
    announce,
    build_artifact,
    event,
    expected_feed,
    feeds,
    produce,
    running_worker,
    session_table,
    wait_until,
)

from streamrec.contracts.dead_letters import parse_dead_letter
from streamrec.contracts.feed import Feed
from streamrec.contracts.training_batch import decode_batch
from streamrec.feed_store import redis_client, write_feeds
from streamrec.kafka import read_topic
from streamrec.serving.runner import Runner

pytestmark = pytest.mark.integration


def test_events_in_feeds_out_with_the_expected_items(wenv: WorkerEnv, tmp_path: Path) -> None:
    ref = build_artifact(wenv.registry_dir)
    announce(wenv.broker, wenv.topics["models"], ref)
    runner = Runner.load(wenv.registry_dir / ref.version, "cpu")
    users = [f"u{i}" for i in range(6)]
    sessions = {u: [f"item-{(7 * n + 3 * i) % 200}" for n in range(5)] for i, u in enumerate(users)}
    msgs = []
    n = 0
    for step in range(5):
        for u in users:
            msgs.append((u, event(n, u, sessions[u][step])))
            n += 1
    poison = [
        ("u0", b"{not json"),
        ("u1", {"event_id": "x", "user_id": "u1", "item_id": "i", "ts": "yesterday"}),
        ("someone-else", {"event_id": "y", "user_id": "u2", "item_id": "item-1", "ts": time.time()}),
    ]
    produce(wenv.broker, wenv.topics["events"], msgs[:15] + poison + msgs[15:])
    with running_worker(wenv, tmp_path / "worker.log") as w:
        w.wait_ready()

        def all_fed() -> bool:
            got = feeds(wenv.redis, wenv.feed_prefix, users)
            return all(
                f is not None and f.event_id == msgs[-len(users) + i][1]["event_id"] for i, f in enumerate(got.values())
            )

        wait_until(all_fed, 60, lambda: f"feeds missing; log:\n{w.tail()}")
        got = feeds(wenv.redis, wenv.feed_prefix, users)
        for u in users:
            f = got[u]
            assert f is not None
            assert f.model_version == ref.version
            assert f.items == expected_feed(runner, sessions[u], ["click"] * 5)
            assert len(f.items) == K and not set(f.items) & set(sessions[u])  # seen items excluded
            assert len(f.because) == K and set(f.because) <= set(sessions[u])  # explained by the session
        table = session_table(wenv.broker, wenv.prefix)
        assert {u: table.get(u, {}).get("i") for u in users} == sessions, list(table)[:5]

        dead = [parse_dead_letter(m.value) for m in read_topic(wenv.broker, wenv.topics["dlq"], min_count=3)]
        assert len(dead) == 3
        assert dead[0].value == b"{not json" and "malformed JSON" in dead[0].reason
        assert "ts" in dead[1].reason
        assert "is not the event's user_id" in dead[2].reason
        assert all(d.topic == wenv.topics["events"] and d.offset >= 0 for d in dead)
        wait_until(lambda: w.metric("streamrec_dlq_total") == 3, 10, "dlq metric")
        assert w.metric("streamrec_events_total") == len(msgs) + 3
        assert w.metric("streamrec_event_to_feed_seconds_count") == len(msgs)

        # training batches: (prefix -> next item) for every event with a non-empty prefix
        def examples() -> list:
            recs = read_topic(wenv.broker, wenv.topics["training"], timeout_s=2)
            return [e for r in recs for e in decode_batch(r.value).examples]

        wait_until(lambda: len(examples()) == len(users) * 4, 20, "training examples")
        ex = {e.event_id: e for e in examples()}
        last = msgs[-1][1]
        assert ex[last["event_id"]].items == sessions[last["user_id"]][:4]
        assert ex[last["event_id"]].next_item == sessions[last["user_id"]][4]


def test_duplicate_delivery_does_not_duplicate_session_items(wenv: WorkerEnv, tmp_path: Path) -> None:
    ref = build_artifact(wenv.registry_dir)
    announce(wenv.broker, wenv.topics["models"], ref)
    msgs = [("ud", event(i, "ud", f"item-{i}")) for i in range(4)]
    produce(wenv.broker, wenv.topics["events"], msgs + msgs[1:3] + [("ud", event(9, "ud", "item-9"))])
    with running_worker(wenv, tmp_path / "worker.log") as w:
        w.wait_ready()
        wait_until(
            lambda: (
                (feeds(wenv.redis, wenv.feed_prefix, ["ud"])["ud"] or Feed("", [], [], "", 0, "", 0, 0)).event_id
                == "e9"
            ),
            60,
            lambda: w.tail(),
        )
        assert session_table(wenv.broker, wenv.prefix)["ud"]["i"] == ["item-0", "item-1", "item-2", "item-3", "item-9"]
        assert w.metric("streamrec_duplicates_total") == 2


def test_feed_is_never_overwritten_by_an_older_computation(wenv: WorkerEnv, tmp_path: Path) -> None:
    ref = build_artifact(wenv.registry_dir)
    announce(wenv.broker, wenv.topics["models"], ref)
    client = redis_client(wenv.redis)
    # A newer computation (higher offset on the same partition) is already there...
    newer = Feed("uo", ["item-5"], [1.0], "future", time.time(), "e-newer", 0, 10**9)
    part = None
    produce(wenv.broker, wenv.topics["events"], [("uo", event(1, "uo", "item-1"))])
    recs = read_topic(wenv.broker, wenv.topics["events"], min_count=1)
    part = recs[0].partition
    newer = Feed("uo", ["item-5"], [1.0], "future", time.time(), "e-newer", part, 10**9)
    assert write_feeds(client, wenv.feed_prefix, [newer], 60) == [True]
    with running_worker(wenv, tmp_path / "worker.log") as w:
        w.wait_ready()
        wait_until(lambda: w.metric("streamrec_feeds_stale_total") == 1, 60, lambda: w.tail())
        assert feeds(wenv.redis, wenv.feed_prefix, ["uo"])["uo"] == newer
    # ... and a replayed (older) computation never moves a feed backwards either.
    fresh = Feed("uo", ["item-2"], [1.0], "v", time.time(), "e2", part, 5)
    older = Feed("uo", ["item-3"], [1.0], "v", time.time(), "e1", part, 4)
    client.delete(wenv.feed_prefix + "uo")
    assert write_feeds(client, wenv.feed_prefix, [fresh, older], 60) == [True, False]
    assert feeds(wenv.redis, wenv.feed_prefix, ["uo"])["uo"] == fresh
    assert json.loads(client.hget(wenv.feed_prefix + "uo", "feed"))["event_id"] == "e2"
