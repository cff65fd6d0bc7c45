"""The worker's seams with the runner and faust: ``Runner.item_vectors`` (the MMR re-rank of the
graph's candidate pool and each item's ``because``, with a real runner), batch k+1 prepared
while batch k is still in flight, offsets held until the feed write (faust's message
refcount), and the cold-start text model loaded once per worker."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from faust.types.tuples import ConsumerMessage
from torch import nn

from streamrec.export.exporter import export_model
from streamrec.serving.registry import LocalRegistry
from streamrec.serving.runner import Runner
from streamrec.streams.acks import disown, hold, release
from streamrec.streams.metrics import WorkerMetrics
from streamrec.streams.model_slot import ModelSlot
from streamrec.streams.pipeline import BatchPipeline, PipelineConfig
from streamrec.streams.records import Record
from streamrec.streams.scoring import length_groups
from streamrec.streams.training import TrainingEmitter

D, N, K, L = 8, 60, 5, 6


class _MeanTower(nn.Module):
    """item_vecs [B,L,d], types [B,L], mask [B,L] -> mean of the real items + type embeddings [B,d]."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.type_emb = nn.Embedding(5, D)
        nn.init.normal_(self.type_emb.weight, std=0.01)

    def forward(self, item_vecs: torch.Tensor, types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(item_vecs.dtype)  # [B, L, 1]
        return ((item_vecs + self.type_emb(types)) * m).sum(1) / m.sum(1).clamp(min=1.0)  # [B, d]


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    registry = LocalRegistry(tmp_path_factory.mktemp("registry"))
    matrix = np.random.default_rng(0).standard_normal((N, D)).astype(np.float32)
    res = export_model(_MeanTower(), [f"i{i}" for i in range(N)], matrix, registry, k=K, session_length=L)
    return Runner.load(registry.fetch(res.ref.version, None), "cpu")


def test_item_vectors_are_the_catalogue_rows_in_order(runner: Runner) -> None:
    matrix = np.load(Path(runner.directory) / "items.npy")
    out = runner.item_vectors(["i7", "i0", "i7"])
    assert out.shape == (3, D) and out.dtype == np.float32
    np.testing.assert_array_equal(out, matrix[[7, 0, 7]])
    assert runner.item_vectors([]).shape == (0, D)
    runner.upsert_items(["new"], np.ones((1, D), np.float32))  # a cold-start item has a vector too
    np.testing.assert_array_equal(runner.item_vectors(["new"]), np.ones((1, D), np.float32))
    with pytest.raises(KeyError):
        runner.item_vectors(["nope"])


class _Sessions:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def get(self, user_id: str, record: Record) -> dict[str, Any] | None:
        return self.data.get(user_id)

    def put(self, user_id: str, value: dict[str, Any], record: Record) -> None:
        self.data[user_id] = value


class _Feeds:
    def __init__(self) -> None:
        self.written: list[list[Any]] = []

    async def write(self, feeds: list[Any]) -> list[bool]:
        self.written.append(list(feeds))
        return [True] * len(feeds)


class _NoDlq:
    async def put(self, rec: Record, reason: str) -> None:
        raise AssertionError(reason)


def _record(offset: int, user: str, item: str) -> Record:
    value = json.dumps({"event_id": f"e{offset}", "user_id": user, "item_id": item, "ts": 1.0}).encode()
    return Record("events", 0, offset, 1.0, user.encode(), value)


def _pipeline(runner: Runner, feeds: _Feeds, mmr_lambda: float = 1.0) -> BatchPipeline:
    async def send(_value: bytes) -> None:
        return None

    slot = ModelSlot()
    slot.swap(runner)
    config = PipelineConfig(k=3, session_length=L, dedupe_window=16, max_event_bytes=4096, mmr_lambda=mmr_lambda)
    training = TrainingEmitter(send, 1000, 1000.0)
    return BatchPipeline(config, _Sessions(), slot, feeds, _NoDlq(), training, WorkerMetrics())  # type: ignore[arg-type]


def test_mmr_rerank_runs_with_the_real_runner(runner: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[list[str]] = []
    real = runner.item_vectors

    def spy(ids: list[str]) -> np.ndarray:
        asked.append(list(ids))
        return real(ids)

    monkeypatch.setattr(runner, "item_vectors", spy)
    feeds = _Feeds()
    result = asyncio.run(_pipeline(runner, feeds, mmr_lambda=0.5).process([_record(0, "u", "i1")]))
    assert result.feeds_applied == 1
    (feed,) = feeds.written[0]
    assert len(feed.items) == 3 == len(set(feed.items)) and "i1" not in feed.items
    assert len(asked[0]) == K and set(feed.items) <= set(asked[0])  # re-ranked the graph's whole pool
    assert feed.because == ["i1"] * 3  # the one session item explains them all


@pytest.mark.parametrize("mmr_lambda", [1.0, 0.5])
def test_every_feed_item_is_explained_by_an_item_of_its_session(runner: Runner, mmr_lambda: float) -> None:
    rng = np.random.default_rng(1)
    records, offset = [], 0
    for u in range(12):
        for item in [f"i{j}" for j in rng.choice(N, size=1 + u % 5, replace=False)] + ["unknown-yet"] * (u % 2):
            records.append(_record(offset, f"u{u}", item))
            offset += 1
    feeds = _Feeds()
    pipeline = _pipeline(runner, feeds, mmr_lambda=mmr_lambda)
    asyncio.run(pipeline.process(records))
    sessions = {r.key.decode(): set() for r in records}
    for r in records:
        sessions[r.key.decode()].add(json.loads(r.value)["item_id"])
    written = [f for batch in feeds.written for f in batch]
    assert len(written) == 12 and all(len(f.items) == 3 for f in written)
    explained = [(f.user_id, why) for f in written for why in f.because]
    assert len(explained) == 36
    assert all(why in sessions[user] and why != "unknown-yet" for user, why in explained)  # 100% of the items


def test_next_batch_is_prepared_while_the_previous_one_waits_and_feeds_stay_in_order(runner: Runner) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        feeds = _Feeds()
        p = _pipeline(runner, feeds)
        first = await p.prepare([_record(0, "u", "i1")])
        gate = asyncio.Event()
        done: list[str] = []

        async def finish_first() -> None:
            await p.finish(first, before_write=gate.wait())
            done.append("first")

        task = asyncio.ensure_future(finish_first())
        second = await p.prepare([_record(1, "u", "i2")])  # sees batch 1's session already
        sessions_seen = list(second.touched["u"].session.items)
        later = asyncio.ensure_future(p.finish(second, before_write=task))
        await asyncio.sleep(0.05)
        assert feeds.written == [] and not later.done()  # nothing written ahead of batch 1
        gate.set()
        await later
        done.append("second")
        assert [f[0].offset for f in feeds.written] == [0, 1]
        return sessions_seen, done

    sessions_seen, done = asyncio.run(scenario())
    assert sessions_seen == ["i1", "i2"] and done == ["first", "second"]


class _Consumer:
    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, message: ConsumerMessage) -> bool:
        message.acked = True
        self.acked.append(message.offset)
        return True


class _Event:
    """faust's Event.ack is ``self.message.ack(self.app.consumer)``."""

    def __init__(self, message: ConsumerMessage, consumer: _Consumer) -> None:
        self.message, self.consumer = message, consumer

    def ack(self) -> bool:
        return self.message.ack(self.consumer)  # type: ignore[arg-type]


def _events(consumer: _Consumer, offsets: range) -> list[_Event]:
    out = []
    for o in offsets:
        m = ConsumerMessage("events", 0, o, 0.0, 0, [], b"k", b"v", None)
        m.incref()  # the stream's reference, as the conductor takes it on delivery
        out.append(_Event(m, consumer))
    return out


def test_held_offsets_become_committable_only_at_release() -> None:
    consumer = _Consumer()
    events = _events(consumer, range(3))
    hold(events)
    for e in events:
        e.ack()  # take_events acks the batch when the agent moves on...
    assert consumer.acked == []  # ...but the feed write is still in flight
    release(events)
    assert consumer.acked == [0, 1, 2]


def test_a_disowned_batch_is_never_acked() -> None:
    consumer = _Consumer()
    events = _events(consumer, range(2))
    hold(events)
    disown(events)
    for e in events:
        e.ack()
    release(events)
    assert consumer.acked == []


def test_length_groups_partition_the_batch_by_similar_length() -> None:
    assert length_groups([]) == []
    assert length_groups([5] * 10) == [list(range(10))]  # one length: one call
    lengths = [1, 50, 2, 49, 3, 30, 120]
    groups = length_groups(lengths)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert [sorted(g) for g in groups] == [[0, 2, 4], [1, 3, 5, 6]]  # short ones apart from long ones


def test_a_larger_catalogue_makes_fewer_calls() -> None:
    """Every call passes over the whole item matrix once: the bigger it is, the fewer calls pay."""
    lengths = [1 + (i * 7) % 50 for i in range(200)]
    counts = [len(length_groups(lengths, 50, n)) for n in (0, 50_000, 1_000_000)]
    assert counts[0] > counts[1] > counts[2] == 1


def test_grouped_scoring_returns_feeds_in_input_order(runner: Runner) -> None:
    feeds = _Feeds()
    p = _pipeline(runner, feeds)
    users = {f"u{u}": [f"i{(u + n) % N}" for n in range(1 if u % 2 else L)] for u in range(30)}
    assert len(length_groups([len(v) for v in users.values()], L)) == 2  # this batch takes two calls
    records, offset = [], 0
    for user, items in users.items():
        for item in items:
            records.append(_record(offset, user, item))
            offset += 1
    asyncio.run(p.process(records))
    got = {f.user_id: f.items for f in feeds.written[0]}
    want = runner.recommend(list(users.values()), [["click"] * len(v) for v in users.values()], 3, True)
    assert [got[u] for u in users] == [w[0] for w in want]


def test_explained_recommendations_are_the_plain_ones_plus_a_session_item_each(runner: Runner) -> None:
    sessions = [["i3", "i9", "nope"], ["i1"], ["nope"]]
    types = [["click"] * len(s) for s in sessions]
    plain = runner.recommend(sessions, types, K)
    explained = runner.recommend(sessions, types, K, explain=True)
    assert [(ids, scores) for ids, scores, _ in explained] == plain
    assert [len(why) for *_, why in explained] == [K, K, 0]  # no known item: no feed, nothing to explain
    assert set(explained[0][2]) <= {"i3", "i9"} and explained[1][2] == ["i1"] * K
