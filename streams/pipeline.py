"""One micro-batch, start to finish: validate -> session -> score -> feed -> training.

The faust agent hands a batch of records here and acks them only when :meth:`process`
returns, so everything a record causes (dead letter, session update, feed) happens before its
offset can be committed. The order of steps is what makes at-least-once safe:

1. validate each record; a bad one goes to the DLQ with its reason, the rest flow on;
2. apply it to the user's session unless its event id was seen (replays after a crash);
3. write each touched session to the table once (its changelog = the durable copy);
4. encode each touched user once, with the session after the whole batch (the latest event
   wins: at 2,000 events/s a 256-event batch often holds several events of one user), in a few
   runner calls of sessions of similar length (:mod:`streamrec.streams.scoring`);
5. write all feeds in one pipelined Redis round trip, retried until it succeeds;
6. queue the training examples (each with the digest of the feed its user held before it).

A record of the erasure topic (consumed by the same agent) erases its user in step 2, and the
user's feed is deleted in step 5, before this batch's feed writes
(:mod:`streamrec.streams.erasure`).

Each applied event is also scored against the feed its user held before it (the live hit rate,
:mod:`streamrec.streams.live_metrics`), and the feeds written in step 5 are remembered for the
users' next events.

With an experiment, step 4 scores each arm's users by its policy (:mod:`streamrec.streams.arms`).

Steps 1-3 are :meth:`BatchPipeline.prepare` (event loop), 4-6 :meth:`BatchPipeline.finish`; the
worker overlaps the ``prepare`` of batch k+1 (and faust's consuming of it) with the scoring of
batch k and the feed write of batch k-1, while each batch is still acked only after its own feed
write, in batch order (streams/app.py).

A duplicate still marks its user for scoring: the crash may have happened after the session
update but before the feed write, and the feed script's offset check makes a redundant write
a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from streamrec.contracts.events import Event, Invalid, validate_bytes
from streamrec.contracts.feed import Feed
from streamrec.contracts.training_batch import Example, shown_digest
from streamrec.serving.hybrid import LiveHybrid
from streamrec.streams.arms import ArmRunners
from streamrec.streams.dlq import DeadLetterSink
from streamrec.streams.erasure import Eraser
from streamrec.streams.feed_sink import FeedSink
from streamrec.streams.live_metrics import LiveMetrics
from streamrec.streams.metrics import WorkerMetrics
from streamrec.streams.model_slot import ModelSlot, Runner
from streamrec.streams.records import Record
from streamrec.streams.scoring import Scorer
from streamrec.streams.session import Session, apply_event
from streamrec.streams.training import TrainingEmitter

log = logging.getLogger(__name__)


class SessionStore(Protocol):
    """Where sessions live between batches (the faust table in the worker)."""

    def get(self, user_id: str, record: Record) -> dict[str, Any] | None: ...

    def put(self, user_id: str, value: dict[str, Any], record: Record) -> None: ...

    def delete(self, user_id: str, record: Record) -> None: ...


@dataclass(frozen=True)
class PipelineConfig:
    k: int
    session_length: int
    dedupe_window: int
    max_event_bytes: int
    exclude_seen: bool = True
    mmr_lambda: float = 1.0
    pool_size: int = 80  # settings.pool_size: what models are exported to return
    model_wait_log_s: float = 10.0
    live_feeds_kept: int = 200_000
    erasure_topic: str = "streamrec.erasures"  # topics.erasures: its records erase users

    @property
    def candidates(self) -> int:
        """Results asked of the runner per session: the MMR pool, or just ``k`` with MMR off."""
        return max(self.pool_size, self.k) if self.mmr_lambda < 1.0 else self.k


@dataclass(slots=True)
class _Touched:
    session: Session
    event: Event
    record: Record
    dirty: bool = False


@dataclass
class BatchResult:
    events: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    users: int = 0
    feeds_applied: int = 0
    model_version: str = ""
    last_offsets: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass(slots=True)
class Prepared:
    """A batch after :meth:`BatchPipeline.prepare`: what is left to score and write."""

    result: BatchResult
    touched: dict[str, _Touched] = field(default_factory=dict)
    examples: list[Example] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)  # of the valid events, for latency
    pairs: list[tuple[list[str], str]] = field(default_factory=list)  # (session before, item): co-occurrence counts
    seq: int = 0  # batches prepared before this one
    erased: list[str] = field(default_factory=list)  # users erased by this batch


class BatchPipeline:
    def __init__(
        self,
        config: PipelineConfig,
        sessions: SessionStore,
        slot: ModelSlot,
        feeds: FeedSink,
        dlq: DeadLetterSink,
        training: TrainingEmitter,
        metrics: WorkerMetrics,
        clock: Callable[[], float] = time.time,
        hybrid: LiveHybrid | None = None,
        arms: ArmRunners | None = None,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.slot = slot
        self.feeds = feeds
        self.dlq = dlq
        self.training = training
        self.metrics = metrics
        self.clock = clock
        self.scorer = Scorer(config, metrics, hybrid)
        self.arms = arms or ArmRunners()
        self.live = LiveMetrics(metrics, config.live_feeds_kept, self.arms.assignment)
        self.eraser = Eraser(sessions, self.live, training, metrics)
        self._prepared = 0

    async def process(self, records: Sequence[Record]) -> BatchResult:
        """The whole batch: :meth:`prepare` then :meth:`finish`."""
        return await self.finish(await self.prepare(records))

    async def prepare(self, records: Sequence[Record]) -> Prepared:
        """Steps 1-3 on the event loop: dead letters sent, sessions applied and written to the
        table. The next batch's ``prepare`` sees these sessions, so it may run while this
        batch is still being scored (per-user order holds: sessions change in partition order)."""
        prepared = Prepared(BatchResult(events=len(records)), seq=self._prepared)
        self._prepared += 1
        result, touched, examples = prepared.result, prepared.touched, prepared.examples
        self.metrics.events.inc(sum(r.topic != self.config.erasure_topic for r in records))
        self.metrics.batch_size.observe(len(records))
        for rec in records:
            result.last_offsets[(rec.topic, rec.partition)] = rec.offset
            try:
                if rec.topic == self.config.erasure_topic:
                    reason = self.eraser.erase(rec, prepared)
                else:
                    reason = self._apply(rec, touched, examples, result, prepared.pairs)
            except Exception as exc:  # one bad event must never stop the stream
                log.exception("processing event at %s[%d]@%d failed", rec.topic, rec.partition, rec.offset)
                reason = f"internal error: {type(exc).__name__}: {exc}"[:500]
            if reason is None:
                prepared.timestamps.append(rec.timestamp)
            else:
                result.dead_letters += 1
                await self.dlq.put(rec, reason)
        for user_id, t in touched.items():
            if t.dirty:
                self.sessions.put(user_id, t.session.to_value(), t.record)
                self.live.forget(user_id)
        result.users = len(touched)
        return prepared

    async def finish(self, prepared: Prepared, before_write: Awaitable[Any] | None = None) -> BatchResult:
        """Steps 4-6: score (in the scoring thread), write the feeds, queue training examples.
        ``before_write`` (the previous batch's finish) is awaited after scoring and before the
        feed write, so feeds are written, and batches complete, in batch order."""
        result, touched = prepared.result, prepared.touched
        ranked: list[Feed] = []
        runner: Runner | None = None
        if touched:
            runner = await self._runner()
            result.model_version = runner.version
            ranked = await self._score(runner, touched, prepared.pairs)
        if before_write is not None:
            await before_write
        if prepared.erased:
            await self.feeds.delete(prepared.erased)
            await self.scorer.forget(prepared.erased)
        if runner is not None:
            applied = await self.feeds.write(ranked)
            erased_since = self.eraser.recent.since(prepared.seq)
            self.live.remember(ranked, applied, erased_since)
            result.feeds_applied = sum(applied)
            self.metrics.feeds_written.inc(result.feeds_applied)
            self.metrics.feeds_stale.inc(len(applied) - result.feeds_applied)
            self.metrics.users_per_batch.observe(len(touched))
            now = self.clock()
            for ts in prepared.timestamps:
                self.metrics.latency.observe(max(0.0, now - ts))
            self.training.add([ex for ex in prepared.examples if not erased_since(ex.user_id)], runner.version)
        await self.training.maybe_flush()
        return result

    def _apply(
        self,
        rec: Record,
        touched: dict[str, _Touched],
        examples: list[Example],
        result: BatchResult,
        pairs: list[tuple[list[str], str]],
    ) -> str | None:
        """Apply one record; returns a dead-letter reason or None."""
        outcome = validate_bytes(rec.value, self.config.max_event_bytes)
        if isinstance(outcome, Invalid):
            return outcome.reason
        event = outcome
        # The session of a user lives on the partition of the user's key; an event keyed
        # otherwise would update a session on the wrong partition (and race another worker).
        key = None if rec.key is None else rec.key.decode("utf-8", "replace")
        if key != event.user_id:
            return f"message key {key!r:.60} is not the event's user_id {event.user_id!r:.60}"
        if self.eraser.drops(event.user_id, rec.timestamp):
            return None  # published before the user's erasure
        t = touched.get(event.user_id)
        if t is None:
            session = Session.from_value(self.sessions.get(event.user_id, rec))
            session.feed = self.live.last_feed(event.user_id, session.feed)
            t = touched[event.user_id] = _Touched(session, event, rec)
        prefix_items, prefix_types = list(t.session.items), list(t.session.types)
        if apply_event(t.session, event, self.config.session_length, self.config.dedupe_window):
            t.dirty = True
            self.live.score(t.session.feed, event.item_id, event.user_id)
            pairs.append((prefix_items, event.item_id))
            if prefix_items:
                fields = (event.item_id, event.type, event.ts, event.event_id, rec.timestamp)
                shown = shown_digest(t.session.feed)  # the feed held before the event: hard negatives
                examples.append(Example(event.user_id, prefix_items, prefix_types, *fields, shown))
        else:
            result.duplicates += 1
            self.metrics.duplicates.inc()
        t.event, t.record = event, rec
        return None

    async def _runner(self) -> Runner:
        runner = self.slot.current
        while runner is None:
            log.warning("no model loaded yet: events wait (offsets are not committed meanwhile)")
            try:
                runner = await asyncio.wait_for(self.slot.wait(), self.config.model_wait_log_s)
            except TimeoutError:
                runner = self.slot.current
        await self.arms.ready()  # pinned versions load at start: their users wait, like everyone's first model
        return runner

    async def _score(
        self, runner: Runner, touched: dict[str, _Touched], pairs: Sequence[tuple[list[str], str]] = ()
    ) -> list[Feed]:
        """Each arm's users ranked by its policy (one group, on ``runner``, without an experiment)."""
        users = list(touched)
        sessions = [(touched[u].session.items, touched[u].session.types) for u in users]
        cfg = self.config
        groups = await self.arms.rank(self.scorer, runner, users, sessions, pairs, cfg.k, cfg.exclude_seen)
        now, k = self.clock(), cfg.k
        feeds = []
        for group, version, ranked in groups:
            for user_id, feed in zip(group.users, ranked, strict=True):
                if feed is None:
                    continue
                t, rec = touched[user_id], touched[user_id].record
                because = feed.because[:k]
                feeds.append(
                    Feed(
                        user_id,
                        feed.items[:k],
                        feed.scores[:k],
                        version,
                        now,
                        t.event.event_id,
                        rec.partition,
                        rec.offset,
                        because,
                        group.arm,
                    )
                )
        return feeds

    def close(self) -> None:
        self.scorer.close()
