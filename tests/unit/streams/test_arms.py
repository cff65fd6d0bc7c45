"""An experiment in the worker's pipeline: each user's feed comes from their arm's policy (the
latest runner, a pinned one, the popularity control) and says so (arm, version); the live counters
are labelled by the user's arm; a batch's events are counted into the co-occurrence table once,
also when only popularity users are in it; without an experiment feeds carry no arm."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from unit.streams.test_live_metrics import _Runner, _Sessions

from streamrec.contracts.feed import Feed
from streamrec.experiment import Assignment, parse_arms
from streamrec.prom import parse
from streamrec.streams.arms import ArmRunners
from streamrec.streams.metrics import WorkerMetrics
from streamrec.streams.model_slot import ModelSlot
from streamrec.streams.pipeline import BatchPipeline, PipelineConfig
from streamrec.streams.popularity import Popularity
from streamrec.streams.records import Record
from streamrec.streams.training import TrainingEmitter

ARMS = parse_arms("online:40:latest,frozen:30:version=v0,control:30:popularity")


class _Pinned(_Runner):
    version = "v0"


class _Feeds:
    def __init__(self) -> None:
        self.written: list[Feed] = []

    async def write(self, feeds: list[Feed]) -> list[bool]:
        self.written.extend(feeds)
        return [True] * len(feeds)


class _Hybrid:
    """Records what the scorer counts; no bonus."""

    table = object()

    def __init__(self) -> None:
        self.counted: list[Any] = []

    def observe(self, pairs: Any) -> None:
        self.counted.extend(pairs)

    def bonus(self, *_: Any) -> None:
        return None


def _pipeline(arms: ArmRunners, feeds: _Feeds, hybrid: _Hybrid | None = None) -> tuple[BatchPipeline, WorkerMetrics]:
    async def send(_value: bytes) -> None:
        return None

    slot = ModelSlot()
    slot.swap(_Runner())  # type: ignore[arg-type]
    metrics = WorkerMetrics()
    config = PipelineConfig(k=20, session_length=8, dedupe_window=16, max_event_bytes=4096)
    emitter = TrainingEmitter(send, 1000, 1000.0)
    pipeline = BatchPipeline(
        config,
        _Sessions(),
        slot,
        feeds,
        None,
        emitter,
        metrics,
        hybrid=hybrid,
        arms=arms,  # type: ignore[arg-type]
    )
    return pipeline, metrics


def _rec(offset: int, user: str, item: str) -> Record:
    ev = {"event_id": f"e{offset}", "user_id": user, "item_id": item, "ts": 1.0}
    return Record("events", 0, offset, 1.0, user.encode(), json.dumps(ev).encode())


def _experiment() -> ArmRunners:
    arms = ArmRunners(Assignment(ARMS, "t"))
    arms.install("v0", _Pinned())  # type: ignore[arg-type]
    return arms


def test_each_arm_is_served_by_its_policy_and_feeds_name_arm_and_version() -> None:
    arms, feeds = _experiment(), _Feeds()
    pipeline, metrics = _pipeline(arms, feeds)
    users = [f"u{n}" for n in range(60)]
    # clicks: i29 by everyone, then i28 by half of them and i27 by the other half
    first = [_rec(n, u, "i29") for n, u in enumerate(users)]
    second = [_rec(100 + n, u, "i28" if n % 2 else "i27") for n, u in enumerate(users)]
    asyncio.run(pipeline.process(first))
    asyncio.run(pipeline.process(second))
    assignment = arms.assignment
    expected_version = {"online": "v1", "frozen": "v0", "control": "popularity"}
    last: dict[str, Feed] = {}
    for feed in feeds.written:
        arm = assignment.label_of(feed.user_id)
        assert (feed.arm, feed.model_version) == (arm, expected_version[arm])
        last[feed.user_id] = feed
    control = [f for f in last.values() if f.arm == "control"]
    assert control
    for f in control:  # the most clicked items less the user's own (i29 and one of i27, i28), scored by counts
        clicked = "i28" if int(f.user_id[1:]) % 2 else "i27"
        assert f.items == [{"i27": "i28", "i28": "i27"}[clicked]] and f.scores == [30.0] and f.because == [None]
    # the second events were scored against the first feeds, counted under each user's arm
    scrape = parse(metrics.exposition().decode())
    with_feed = Counter()
    for labels, value in scrape.labelled["streamrec_live_events_with_feed_total"]:
        assert labels["version"] == expected_version[labels["arm"]]
        with_feed[labels["arm"]] += value
    assert with_feed == Counter(assignment.label_of(u) for u in users)
    by_bucket = Counter(
        {
            (labels["arm"], labels["bucket"]): value
            for labels, value in scrape.labelled["streamrec_live_bucket_events_with_feed_total"]
        }
    )
    assert by_bucket == Counter((assignment.label_of(u), str(assignment.bucket(u))) for u in users)
    without = {labels["arm"]: v for labels, v in scrape.labelled["streamrec_live_events_without_feed_total"]}
    assert without == dict(Counter(assignment.label_of(u) for u in users))


def test_a_batch_is_counted_into_the_cooccurrence_table_once() -> None:
    arms, hybrid = _experiment(), _Hybrid()
    pipeline, _ = _pipeline(arms, _Feeds(), hybrid)
    users = [f"u{n}" for n in range(60)]
    control = [u for u in users if arms.assignment.label_of(u) == "control"]
    asyncio.run(pipeline.process([_rec(n, u, "i1") for n, u in enumerate(users)]))  # every arm
    assert len(hybrid.counted) == 60
    asyncio.run(pipeline.process([_rec(100 + n, u, "i2") for n, u in enumerate(control)]))  # control only
    assert len(hybrid.counted) == 60 + len(control)


def test_without_an_experiment_feeds_carry_no_arm() -> None:
    feeds = _Feeds()
    pipeline, metrics = _pipeline(ArmRunners(), feeds)
    asyncio.run(pipeline.process([_rec(0, "u", "i1"), _rec(1, "w", "i2")]))
    assert [(f.arm, f.model_version) for f in feeds.written] == [("", "v1"), ("", "v1")]
    scrape = parse(metrics.exposition().decode())
    assert scrape.labelled["streamrec_live_events_without_feed_total"] == [({"arm": "all"}, 2.0)]


def test_popularity_leaves_out_withdrawn_and_seen_items() -> None:
    pop = Popularity()
    pop.observe(["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"])
    pop.set_available({"b": False})
    assert [r.items for r in pop.rank([["a"], []], k=2, exclude_seen=True)] == [["c", "d"], ["a", "c"]]
    pop.set_available({"b": True})
    assert pop.rank([["a"]], k=3, exclude_seen=False)[0].items == ["a", "b", "c"]


def test_pinned_arms_wait_for_their_version() -> None:
    arms = ArmRunners(Assignment(ARMS, "t"))

    async def waits() -> bool:
        try:
            await asyncio.wait_for(arms.ready(), 0.05)
        except TimeoutError:
            arms.install("v0", _Pinned())  # type: ignore[arg-type]
            await asyncio.wait_for(arms.ready(), 0.05)
            return True
        return False

    assert asyncio.run(waits())
    assert [r.version for r in arms.held()] == ["v0"]
