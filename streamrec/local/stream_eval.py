"""``streamrec eval --stream``: the demo's online hit@10, in process, in minutes.

The newer part of a log is replayed in time order through the worker's own
:class:`~streamrec.streams.pipeline.BatchPipeline` (session update and dedupe, the ONNX runner
loaded by the worker's loader, seen-masking, the live co-occurrence hybrid), with the session
table, the feed store and the dead-letter and training topics replaced by in-memory stand-ins:
no broker, no Redis. The model is exported into a scratch registry first (with its parity
check), exactly as ``streamrec demo`` does before its worker loads it.

Protocol = the demo's (its worker's live counters, streamrec.streams.live_metrics): events go
in chunks of ``CHUNK`` (20); before a chunk is processed, each of its events is scored against
the top-10 of the feed its user held (:meth:`OnlineHitRate.score`); events whose user has no
feed yet are counted apart; sessions start empty. One difference: the demo's worker forms its
own micro-batches (by size and time), here they are the chunks. Same-run baselines,
on the same chunks and checks: the co-occurrence kNN over the hybrid's own live table (raw
counts, last items weighted by recency: the data README's streaming kNN), that table's
session kNN alone, and running popularity (streamrec.local.stream_baselines).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from streamrec.config import Settings
from streamrec.contracts.events import Event
from streamrec.contracts.feed import Feed
from streamrec.local.demo_run import CHUNK
from streamrec.local.new_items import NewItemDelay
from streamrec.local.stream_baselines import Baselines, K
from streamrec.local.stream_online import REPLAY_RATE, OnlineReplay
from streamrec.online_eval import OnlineHitRate
from streamrec.serving.hybrid import LiveHybrid
from streamrec.serving.runner import Runner
from streamrec.streams.app import pipeline_config
from streamrec.streams.dlq import DeadLetterSink
from streamrec.streams.metrics import WorkerMetrics
from streamrec.streams.model_slot import ModelSlot
from streamrec.streams.pipeline import BatchPipeline
from streamrec.streams.records import Record
from streamrec.streams.training import SendFn, TrainingEmitter

if TYPE_CHECKING:
    from streamrec.encoder.artifact import TrainedModel


class MemorySessions:
    """The session table as a dict (the worker's is a changelog-backed faust table)."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}

    def get(self, user_id: str, record: Record) -> dict[str, Any] | None:
        return self.values.get(user_id)

    def put(self, user_id: str, value: dict[str, Any], record: Record) -> None:
        self.values[user_id] = value


class MemoryFeeds:
    """The feed store as a dict: every write applies (one writer, in order). With ``lag`` > 0 a
    read sees only feeds whose batch ended ``lag`` events or more before it: the demo's worker
    trails its replay by about rate x event-to-feed latency (200 events/s x ~50 ms = ~10)."""

    def __init__(self, lag: int = 0, new_items: NewItemDelay | None = None) -> None:
        self.feeds: dict[str, Feed] = {}
        self.new_items = new_items
        self.lag = lag
        self.done_at = 0  # events consumed once the batch being written is done
        self.read_at = 0  # events produced when the next read happens
        self._history: dict[str, list[tuple[int, Feed]]] = {}

    async def write(self, feeds: Sequence[Feed]) -> list[bool]:
        if self.new_items is not None:
            self.new_items.served(feeds, self.done_at)
        for f in feeds:
            self.feeds[f.user_id] = f
            if self.lag:
                h = self._history.setdefault(f.user_id, [])
                h.append((self.done_at, f))
                del h[:-8]
        return [True] * len(feeds)

    def get(self, user_id: str) -> Feed | None:
        """The feed a read at ``read_at`` sees."""
        if not self.lag:
            return self.feeds.get(user_id)
        visible = [f for done, f in self._history.get(user_id, ()) if done <= self.read_at - self.lag]
        return visible[-1] if visible else None


async def _discard(*_args: Any) -> None:
    return None


def _records(events: Sequence[Event], start: int) -> list[Record]:
    return [Record("events", 0, start + n, ev.ts, ev.user_id.encode(), ev.to_json()) for n, ev in enumerate(events)]


async def _replay(
    pipeline: BatchPipeline,
    feeds: MemoryFeeds,
    base: Baselines,
    events: list[Event],
    chunk: int,
    batch: int,
    online: OnlineReplay | None = None,
) -> dict:
    stores = {"served": feeds, "cooccurrence": base.knn, "session_knn": base.sknn, "popularity": base.top}
    hits = {name: OnlineHitRate(K) for name in stores}
    bar = tqdm(total=len(events), unit="ev", mininterval=5.0, desc="replay")
    for start in range(0, len(events), chunk):
        part = events[start : start + chunk]
        if feeds.new_items is not None:
            feeds.new_items.saw(part, start)
        for name, rate in hits.items():
            rate.score(part, [stores[name].get(ev.user_id) for ev in part], at=float(start))
        touched: dict[str, list[str]] = {}
        for b in range(0, len(part), batch):  # the worker's micro-batches (the demo's hold ~6 events)
            feeds.done_at = start + min(b + batch, len(part))
            prepared = await pipeline.prepare(_records(part[b : b + batch], start + b))
            await pipeline.finish(prepared)
            touched.update({u: t.session.items for u, t in prepared.touched.items()})
        feeds.read_at = start + len(part)
        base.update(touched, part)
        if online is not None:
            online.after_chunk(start + len(part), pipeline.slot)
        bar.update(len(part))
        if start // chunk % 500 == 0:
            bar.set_postfix(hit=f"{hits['served'].rate():.3f}", knn=f"{hits['cooccurrence'].rate():.3f}")
    bar.close()
    if online is not None:
        online.measure_sawtooth(hits["served"].records)
    out = {}
    for name, rate in hits.items():
        out[name] = {
            "online_hr@10": round(rate.rate(), 4) if rate.records else None,
            "latest_quarter_hr@10": round(rate.rate(rate.last_fraction(0.25)), 4) if rate.records else None,
            "events_checked": len(rate.records),
            "events_without_feed": rate.no_feed,
        }
    return out


def _pipeline(
    settings: Settings, slot: ModelSlot, feeds: MemoryFeeds, hybrid: LiveHybrid, send: SendFn = _discard
) -> BatchPipeline:
    """The worker's pipeline, configured as the worker configures it (streams.app.pipeline_config);
    ``send`` gets its training batches."""
    w = settings.worker
    training = TrainingEmitter(send, w.training_every_n, w.training_every_s)
    return BatchPipeline(
        pipeline_config(settings),
        MemorySessions(),
        slot,
        feeds,  # type: ignore[arg-type]  # duck-typed: write() only
        DeadLetterSink(_discard),
        training,
        WorkerMetrics(),
        hybrid=hybrid,
    )


def _served_runner(settings: Settings, trained: TrainedModel, root: Path) -> Runner:
    """Export into a scratch registry at ``root`` (parity-checked) and load it with the worker's loader."""
    from streamrec.export.exporter import export_trained
    from streamrec.serving.registry import LocalRegistry
    from streamrec.streams.artifacts import make_loader

    registry = LocalRegistry(root)
    ref = export_trained(
        trained,
        registry,
        k=settings.k,
        pool=settings.pool,
        int8=settings.registry.int8,
        fp16=settings.registry.fp16,
        ann_min_items=settings.serving.ann_min_items,
    ).ref
    local = settings.model_copy(update={"registry": settings.registry.model_copy(update={"url": str(root)})})
    return make_loader(local)(ref.announcement())


def stream_eval(
    settings: Settings,
    model_dir: Path,
    events: list[Event],
    older: list[Event],
    chunk: int = CHUNK,
    lag: int = 0,
    batch: int = CHUNK,
    online: bool = False,
) -> dict:
    """Replay ``events`` against the model in ``model_dir``; ``older`` (the part the model was
    trained on) counts the base co-occurrence table and session index when the model directory has
    none. With
    ``online`` the trainer's update rule runs alongside (streamrec.local.stream_online)."""
    from streamrec.datasets import EventLog
    from streamrec.encoder.artifact import load_model_dir
    from streamrec.encoder.hybrid import table_from_log

    trained = load_model_dir(model_dir)
    shipped = trained.cooccurrence is not None and trained.cooccurrence.sessions is not None
    if not shipped:  # none, or one saved before tables carried their session index
        trained.cooccurrence = table_from_log(EventLog(older), settings.hybrid)
    with tempfile.TemporaryDirectory(prefix="streamrec-stream-eval-") as tmp:
        runner = _served_runner(settings, trained, Path(tmp) / "registry")
        slot = ModelSlot()
        delay = NewItemDelay({*trained.item_ids, *(ev.item_id for ev in older)})
        feeds = MemoryFeeds(lag, delay)
        hybrid = LiveHybrid(settings.hybrid)
        learning = None
        if online:
            export = lambda model, root: _served_runner(settings, model, root)  # noqa: E731
            learning = OnlineReplay.start(settings, trained, export, Path(tmp) / "online")
        pipeline = _pipeline(settings, slot, feeds, hybrid, learning.send if learning else _discard)
        try:
            slot.swap(runner)
            reference = table_from_log(EventLog(older), settings.hybrid.reference())
            base = Baselines(reference, Counter(ev.item_id for ev in older))
            results = asyncio.run(_replay(pipeline, feeds, base, events, chunk, batch, learning))
        finally:
            pipeline.close()
    return {
        "methods": results,
        "online": learning.summary() if learning else None,
        "new_items": delay.summary(REPLAY_RATE),
        "protocol": _protocol(settings, runner, len(events), chunk, batch, lag, shipped, online),
    }


def _protocol(
    settings: Settings, runner: Runner, n: int, chunk: int, batch: int, lag: int, shipped: bool, online: bool
) -> dict:
    h = settings.hybrid
    return {
        "replay": f"{n} events in time order, chunks of {chunk}, each scored against the top-{K} "
        f"its user's feed held before the chunk (worker batches of {batch}, feeds {lag} events behind); "
        "sessions start empty; events without a feed not counted",
        "exclude_seen": settings.worker.exclude_seen,
        "served": f"worker pipeline + ONNX runner ({runner.file_name}), hybrid beta {h.beta} ({h.norm}), "
        f"{h.max_neighbours} neighbours per item, table counted online: {h.learn_online}, pair weight "
        f"1/k**{h.distance_exponent:g}, popularity exponent {h.popularity_exponent:g}, source exponent "
        f"{h.source_exponent:g}, session-kNN weight {h.session_weight:g} ({h.session_neighbours} neighbours)"
        + ("; online trainer on (see 'online')" if online else "; frozen model"),
        "base_table": "shipped with the model" if shipped else "counted on the older part of the log",
        "cooccurrence": "reference kNN: its own table of raw counts (pairs within the window count 1), counted "
        "on the same events, last items weighted by recency",
        "session_knn": "the reference table's session index alone (seeded with the older part's sessions, "
        f"every session stored as it grows), {h.session_neighbours} neighbours, {h.session_items} items a session",
        "popularity": "counts of the older part, updated per chunk",
        "model_version": runner.version,
    }
