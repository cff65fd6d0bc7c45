"""The worker's live hit rate: each event scored against the feed its user held before it, the
digest carried by the session (so a restarted worker still scores against it), duplicates not
counted, and the per-user cost of the digest in the changelog (<= 100 bytes at K = 20)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from streamrec.bench.live_state import measure
from streamrec.prom import parse
from streamrec.streams.live_metrics import LiveMetrics, feed_digest, rank_in, short_digest
from streamrec.streams.metrics import WorkerMetrics
from streamrec.streams.model_slot import ModelSlot
from streamrec.streams.pipeline import BatchPipeline, PipelineConfig
from streamrec.streams.records import Record
from streamrec.streams.training import TrainingEmitter

ITEMS = [f"i{n}" for n in range(30)]


class _Runner:
    """Always recommends i0..i{want-1} (minus the session's items)."""

    version, k, session_length, item_ids, takes_bonus = "v1", 20, 8, ITEMS, False

    def recommend(self, sessions: list[list[str]], _types: Any, want: int, *_: Any, **__: Any) -> list[Any]:
        out = []
        for s in sessions:
            ids = [i for i in ITEMS if i not in s][:want]
            out.append((ids, [1.0] * len(ids), [None] * len(ids)))  # with explain: no because
        return out


class _Sessions(dict):
    def get(self, user_id: str, record: Record | None = None) -> Any:  # type: ignore[override]
        return super().get(user_id)

    def put(self, user_id: str, value: dict[str, Any], record: Record) -> None:
        self[user_id] = json.loads(json.dumps(value))  # what the changelog round trip keeps


class _Feeds:
    async def write(self, feeds: list[Any]) -> list[bool]:
        return [True] * len(feeds)


async def _drop(_value: bytes) -> None:
    return None


def _pipeline(
    sessions: _Sessions, metrics: WorkerMetrics, send: Callable[[bytes], Awaitable[None]] = _drop, every: int = 1000
) -> BatchPipeline:
    """A pipeline over the fakes above; ``send`` gets the training batches, one per ``every`` examples."""
    slot = ModelSlot()
    slot.swap(_Runner())  # type: ignore[arg-type]
    config = PipelineConfig(k=20, session_length=8, dedupe_window=16, max_event_bytes=4096)
    return BatchPipeline(
        config,
        sessions,
        slot,
        _Feeds(),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        TrainingEmitter(send, every, 1000.0),
        metrics,
    )


def _rec(offset: int, item: str, event_id: str | None = None) -> Record:
    ev = {"event_id": event_id or f"e{offset}", "user_id": "u", "item_id": item, "ts": 1.0}
    return Record("events", 0, offset, 1.0, b"u", json.dumps(ev).encode())


def _counts(metrics: WorkerMetrics) -> dict[str, float]:
    s = parse(metrics.exposition().decode())
    names = ("events_with_feed", "hits_at_10", "hits_at_k", "reciprocal_rank", "events_without_feed")
    return {n: s.get(f"streamrec_live_{n}_total") for n in names}


def test_digest_ranks_and_version() -> None:
    d = feed_digest("v7", ["a", "b", "c"])
    assert len(d) == 16  # 4 digests of 3 bytes, base64
    assert rank_in(d, "c") == (short_digest("v7"), 3)
    assert rank_in(d, "z")[1] is None


def test_events_are_scored_against_the_feed_held_before_them() -> None:
    sessions, metrics = _Sessions(), WorkerMetrics()
    p = _pipeline(sessions, metrics)
    asyncio.run(p.process([_rec(0, "i29")]))  # no feed yet; feed after it: i0..i19
    asyncio.run(p.process([_rec(1, "i2"), _rec(2, "i2", "e1")]))  # rank 3; the redelivery is not counted
    asyncio.run(p.process([_rec(3, "i14")]))  # feed now i0,i1,i3..i20: i14 at rank 14 (top K, not 10)
    asyncio.run(p.process([_rec(4, "i25")]))  # not in the feed
    c = _counts(metrics)
    assert c == {
        "events_with_feed": 3,
        "hits_at_10": 1,
        "hits_at_k": 2,
        "reciprocal_rank": 1 / 3 + 1 / 14,
        "events_without_feed": 1,
    }
    labelled = parse(metrics.exposition().decode()).labelled["streamrec_live_hits_at_k_total"]
    assert labelled == [({"version": "v1", "arm": "all"}, 2.0)]
    # A restarted worker (empty memory) scores against the digest the session carries: the feed
    # before the user's latest event (one feed older than the one written after it).
    assert rank_in(sessions["u"]["f"], "i20")[1] == 19
    fresh = WorkerMetrics()
    asyncio.run(_pipeline(sessions, fresh).process([_rec(5, "i20")]))
    assert _counts(fresh)["hits_at_k"] == 1 and _counts(fresh)["hits_at_10"] == 0


def test_memory_is_bounded_and_refused_feeds_are_not_remembered() -> None:
    live = LiveMetrics(WorkerMetrics(), kept=2)
    from streamrec.contracts.feed import Feed

    feeds = [Feed(u, ["a"], [1.0], "v1", 0.0, "e", 0, 0) for u in ("x", "y", "z", "w")]
    live.remember(feeds, [True, True, True, False])
    assert live.last_feed("x", "") == "" and live.last_feed("w", "") == ""
    assert rank_in(live.last_feed("z", ""), "a")[1] == 1


def test_changelog_cost_per_user_is_at_most_100_bytes_at_k20() -> None:
    out = measure(ks=(20,))
    assert out["by_k"]["20"]["extra_bytes"] <= 100, out
