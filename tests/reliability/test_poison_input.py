"""Issue #9, item 5 (docs/architecture.md, invariant 2): poison input never stops the stream. Each bad
message lands in the DLQ with its reason (and the source offset), or is handled by a documented
rule (README "Event contract"): an unknown item id is a valid event; a timestamp far in the past
(but after 1970) is valid; events are applied in arrival (offset) order per user, whatever their
``ts`` says."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from support.reliability_helpers import sessions_of
from support.worker_harness import WorkerEnv, event, feeds, produce, running_worker, wait_until

from streamrec.contracts.dead_letters import parse_dead_letter
from streamrec.kafka import make_producer, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

NOW = time.time()
GOOD = {"event_id": "g", "user_id": "x", "item_id": "item-1", "type": "click", "ts": NOW}

# key -> (raw message value, substring of the expected DLQ reason)
POISON: dict[str, tuple[bytes | None, str]] = {
    "p-json": (b'{"event_id": "a", "user_id":', "malformed JSON"),
    "p-not-object": (b"[1, 2, 3]", "must be a JSON object"),
    "p-nested": (b"[" * 30_000 + b"]" * 30_000, "malformed JSON"),
    "p-utf8": (b'{"event_id": "\xff\xfe", "user_id": "p-utf8"}', "not valid UTF-8"),
    "p-missing": (json.dumps({"event_id": "m", "user_id": "p-missing"}).encode(), "missing field(s): item_id, ts"),
    "p-type-user": (json.dumps(GOOD | {"user_id": 42}).encode(), "user_id must be a string"),
    "p-type-ts": (json.dumps(GOOD | {"user_id": "p-type-ts", "ts": [1]}).encode(), "ts must be"),
    "p-bool-ts": (json.dumps(GOOD | {"user_id": "p-bool-ts", "ts": True}).encode(), "boolean"),
    "p-nan-ts": (b'{"event_id":"n","user_id":"p-nan-ts","item_id":"i","ts":NaN}', "not a finite time"),
    "p-type-kind": (json.dumps(GOOD | {"user_id": "p-type-kind", "type": "like"}).encode(), "is not one of"),
    "p-unknown-field": (json.dumps(GOOD | {"user_id": "p-unknown-field", "price": 3}).encode(), "unknown field"),
    "p-empty-id": (json.dumps(GOOD | {"user_id": "p-empty-id", "item_id": " "}).encode(), "item_id is empty"),
    "p-future": (json.dumps(GOOD | {"user_id": "p-future", "ts": NOW + 10 * 86400}).encode(), "in the future"),
    "p-millis": (json.dumps(GOOD | {"user_id": "p-millis", "ts": NOW * 1000}).encode(), "milliseconds?"),
    "p-before-1970": (json.dumps(GOOD | {"user_id": "p-before-1970", "ts": -5}).encode(), "after 1970"),
    "p-naive-iso": (json.dumps(GOOD | {"user_id": "p-naive-iso", "ts": "2024-01-01T00:00:00"}).encode(), "timezone"),
    "p-key-mismatch": (json.dumps(GOOD | {"user_id": "someone-else"}).encode(), "is not the event's user_id"),
    "p-over-64k": (json.dumps(GOOD | {"user_id": "p-over-64k", "item_id": "x" * 70_000}).encode(), "-byte limit"),
    "p-tombstone": (None, "empty message"),
}


def _fed_after(env: WorkerEnv, user: str, event_id: str) -> bool:
    f = feeds(env.redis, env.feed_prefix, [user])[user]
    return f is not None and f.event_id == event_id


def _dead_letters(env: WorkerEnv, min_count: int) -> dict[str, Any]:
    recs = read_topic(env.broker, env.topics["dlq"], min_count=min_count, timeout_s=15)
    return {r.key.decode(): parse_dead_letter(r.value) for r in recs}


def test_poison_messages_land_in_dlq_with_reason_and_stream_continues(wenv: WorkerEnv, tmp_path: Path) -> None:
    """Pass: 19 kinds of bad message (malformed/deeply nested JSON, not an object, invalid UTF-8,
    missing fields, wrong types, NaN/boolean/list timestamps, unknown type, unknown field, empty
    id, ts 10 days ahead, a millisecond ts, ts before 1970, naive ISO ts, key != user_id, over
    64 KiB, tombstone), interleaved with good events, each yield exactly one DLQ record whose
    reason names the fault and whose source offset/bytes are the original's; every good event
    (including the documented-valid ones: unknown item id, ts in 1970, out-of-order ts) reaches
    its user's feed; the worker stays up and ready."""
    good: list[tuple[str, dict[str, Any]]] = [
        ("ok", event(0, "ok", "item-1")),
        ("unknown-item", event(1, "unknown-item", "item-1")),
        ("unknown-item", event(2, "unknown-item", "no-such-item")),  # valid: enters the session
        ("old", event(3, "old", "item-2", ts=1.0)),  # 1970-01-01T00:00:01Z: valid
        ("late", event(4, "late", "item-3", ts=NOW)),
        ("late", event(5, "late", "item-4", ts=NOW - 3600)),  # out of order: applied in arrival order
        ("late", event(6, "late", "item-5", ts=NOW - 7200)),
    ]
    msgs: list[tuple[str | None, Any]] = []
    for n, (key, (raw, _)) in enumerate(POISON.items()):
        msgs.append((key, raw))
        msgs.append(good[n % len(good)] if n < len(good) else ("ok", event(100 + n, "ok", f"item-{10 + n}")))
    msgs.append(("ok", event(999, "ok", "item-99")))
    with running_worker(wenv, tmp_path / "worker.log") as w:
        w.wait_ready()
        producer = make_producer(wenv.broker, value_serializer=None)  # raw bytes; None = a real tombstone
        for key, value in msgs:
            raw = value if value is None or isinstance(value, bytes) else json.dumps(value).encode()
            producer.send(wenv.topics["events"], key=key.encode(), value=raw)
        producer.flush()
        producer.close()
        wait_until(lambda: _fed_after(wenv, "ok", "e999"), 60, lambda: w.tail())
        w.check_alive()
        assert w.get("/readyz")[0] == 200
        dead = _dead_letters(wenv, len(POISON))
        assert set(dead) == set(POISON), f"missing: {set(POISON) - set(dead)}, extra: {set(dead) - set(POISON)}"
        for key, (raw, reason) in POISON.items():
            assert reason in dead[key].reason, (key, dead[key].reason)
            assert dead[key].value == raw and dead[key].topic == wenv.topics["events"]
        assert w.metric("streamrec_dlq_total") == len(POISON)
        got = feeds(wenv.redis, wenv.feed_prefix, ["unknown-item", "old", "late"])
        assert all(f is not None for f in got.values())
        assert got["unknown-item"].event_id == "e2" and got["old"].event_id == "e3"  # type: ignore[union-attr]
        assert got["late"].event_id == "e6"  # type: ignore[union-attr]
        sessions = sessions_of(wenv, ["unknown-item", "late"])
        assert sessions["unknown-item"] == ["item-1", "no-such-item"]
        assert sessions["late"] == ["item-3", "item-4", "item-5"]  # arrival order, not ts order


def test_ten_megabyte_event_lands_in_dlq_and_stream_continues(wenv: WorkerEnv, tmp_path: Path) -> None:
    """Pass: a 10 MB event (accepted by the broker: Tansu does not enforce max.message.bytes)
    is refused by the worker's own size limit (64 KiB) with a DLQ record naming the size, and
    the good event produced after it reaches its feed; the worker stays up."""
    big = json.dumps(GOOD | {"user_id": "big", "item_id": "x" * (10 * 1024 * 1024)}).encode()
    with running_worker(wenv, tmp_path / "worker.log") as w:
        w.wait_ready()
        producer = make_producer(wenv.broker, max_request_size=12 * 1024 * 1024)
        producer.send(wenv.topics["events"], key=b"big", value=big)
        producer.flush()
        producer.close()
        produce(wenv.broker, wenv.topics["events"], [("big", event(1, "big", "item-1"))])

        wait_until(
            lambda: w.check_alive() or _fed_after(wenv, "big", "e1"),
            60,
            lambda: f"the event after a 10 MB one never reached its feed:\n{w.tail()}",
        )
        dead = _dead_letters(wenv, 1)
        assert "byte limit" in dead["big"].reason
        w.check_alive()
