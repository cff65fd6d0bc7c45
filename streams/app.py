"""The Faust app of the stream worker: topics, session table, the events agent, followers of the
catalogue and model topics, timers, and the metrics/health pages.

Wiring only; each concern lives in its own module (acks: the commit protocol; pipeline,
feed_sink, dlq, training, catalogue, hotswap, health, metrics; faust internals: faust_glue).
Faust settings that matter, with why:

* ``consumer_auto_offset_reset="earliest"``: a new consumer group must start at the first event,
  not the latest (the aiokafka default would skip everything published before the first join).
* ``processing_guarantee="at_least_once"``: exactly-once has open crash/duplicate bugs in
  faust-streaming; idempotent writes (session dedupe, monotonic feed script) make replays safe.
* ``broker_session_timeout`` short (6 s default): a join against Tansu takes about half of it,
  and a SIGKILLed worker's partitions move after it.
* ``producer_acks=-1``: a dead letter, training batch or changelog record is acknowledged by
  all in-sync replicas before offsets are committed (faust flushes its producer first).
* agent ``concurrency=1``: with more, faust can commit an offset still in flight (faust #606).
  Parallelism comes from a pipeline inside the one agent instead: batch k is scored (and its
  feeds written) in a task while the agent consumes and prepares batch k+1, at most two batches
  in flight; each batch's offsets stay held until its own feed write, and batches complete in
  order (streams/acks.py). At saturation this overlaps the event loop's ~300 us/event of
  faust/Python work with onnxruntime, which releases the GIL.
* ``fetch_max_wait_ms`` 50 instead of faust's hard-coded 1500 (see faust_glue): the stall.
* ``producer_max_batch_size`` 256 KiB (faust: 16 KiB): changelog records queued while a produce
  request is in flight go out together. ``producer_linger_ms`` stays 0: at 5 ms saturation rose
  a few percent more, but reliability item 2 (a worker joins, then one leaves) failed 5 runs of
  5 (a session update computed from a stale session after the rebalance; docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust
from aiokafka import ConsumerRecord
from faust.types import TP

from streamrec.config import Settings
from streamrec.contracts.announcement import Canary
from streamrec.contracts.items import ItemUpdate, parse_records
from streamrec.experiment import Assignment
from streamrec.feed_store import redis_client
from streamrec.follow import TopicFollower
from streamrec.kafka import security_kwargs
from streamrec.serving.hybrid import LiveHybrid
from streamrec.streams.acks import BatchAcks
from streamrec.streams.arms import ArmRunners
from streamrec.streams.catalogue import CatalogueOverlay
from streamrec.streams.cold_start import embed_updates
from streamrec.streams.dlq import DeadLetterSink
from streamrec.streams.faust_glue import TableSessionStore, WorkerApp, committed_offset, partition_lag
from streamrec.streams.feed_sink import FeedSink
from streamrec.streams.health import ConsumerProgress, Health, kafka_answers
from streamrec.streams.hotswap import HotSwapper, Loader
from streamrec.streams.kafka_opts import faust_credentials
from streamrec.streams.metrics import WorkerMetrics
from streamrec.streams.model_slot import Fit, ModelSlot, Runner
from streamrec.streams.pipeline import BatchPipeline, PipelineConfig
from streamrec.streams.training import TrainingEmitter
from streamrec.streams.web import register_pages

log = logging.getLogger(__name__)


def pipeline_config(settings: Settings) -> PipelineConfig:
    """The pipeline's knobs: the feed, session and exported pool sizes, and the worker settings of
    the same names."""
    same = ("dedupe_window", "exclude_seen", "mmr_lambda", "model_wait_log_s", "live_feeds_kept")
    sizes = {"k": settings.k, "session_length": settings.session_length, "max_event_bytes": settings.max_event_bytes}
    sizes["pool_size"] = settings.pool_size
    same_values = {name: getattr(settings.worker, name) for name in same}
    return PipelineConfig(**sizes, **same_values, erasure_topic=settings.topics.erasures)


class WorkerRuntime:
    """Everything one worker process runs. ``fatal`` is set when it stopped on an error."""

    def __init__(self, settings: Settings, load: Loader) -> None:
        self.settings = settings
        w = settings.worker
        self.fatal: BaseException | None = None
        self.metrics = WorkerMetrics()
        self.health = Health(ConsumerProgress(w.stall_s))
        config = pipeline_config(settings)
        self.slot = ModelSlot(on_swap=self._on_swap, fit=Fit(config.k, config.candidates, config.session_length))
        self.app = self._make_app()
        raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
        # events and erasures, co-partitioned: partition p of both reaches table partition p's owner (erasure.py)
        inbound = (settings.topics.events, settings.topics.erasures)
        self.inbound_topic = self.app.topic(*inbound, partitions=settings.partitions, **raw)
        self.dlq_topic = self.app.topic(settings.topics.dlq, **raw)
        self.training_topic = self.app.topic(settings.topics.training, **raw)
        # Changelog-backed (topic "<app_id>-sessions-changelog", co-partitioned with events);
        # key_type=str: the raw key bytes read back as the same str after recovery.
        self.table = self.app.Table("sessions", default=None, partitions=settings.partitions, key_type=str)
        self.feed_sink = FeedSink(
            redis_client(settings.redis, settings.redis_tls),
            settings.feed_prefix,
            settings.feed_ttl_s,
            base_s=w.redis_retry_base_s,
            max_s=w.redis_retry_max_s,
            on_error=self._on_redis_error,
            on_success=self._on_redis_ok,
        )
        experiment = settings.experiment
        self.arms = ArmRunners(Assignment(experiment.parsed, experiment.salt))
        self.training = TrainingEmitter(
            self._send_training, w.training_every_n, w.training_every_s, on_published=self.metrics.training_examples.inc
        )
        self.pipeline = BatchPipeline(
            config,
            TableSessionStore(self.table),
            self.slot,
            self.feed_sink,
            DeadLetterSink(self._send_dlq, on_dead_letter=lambda _reason: self.metrics.dlq.inc()),
            self.training,
            self.metrics,
            hybrid=LiveHybrid(settings.hybrid),
            arms=self.arms,
        )
        self.catalogue = CatalogueOverlay()
        self._catalogue_lock = asyncio.Lock()
        self.swapper = HotSwapper(self.slot, load, self._install_model, self._load_failed, self._die, trial=self)
        self.kafka_sec = security_kwargs(settings.kafka_security)
        self.items_follower = TopicFollower(settings.broker, settings.topics.items, self._on_items, **self.kafka_sec)
        self.models_follower = TopicFollower(settings.broker, settings.topics.models, self._on_models, **self.kafka_sec)
        self.acks = BatchAcks(
            self.pipeline,
            seek=lambda tp, offset: self.app.consumer.seek(tp, offset),
            committed=lambda p: committed_offset(self.app.consumer, TP(settings.topics.events, p)),
            on_fatal=self._die,
            on_held_back=self.metrics.held_back.inc,
            topic=settings.topics.events,
        )
        self._register()

    # -- faust app --------------------------------------------------------------------------
    def _make_app(self) -> faust.App:
        s, w = self.settings, self.settings.worker
        datadir = Path(s.data_dir) / "worker" / w.app_id
        datadir.parent.mkdir(parents=True, exist_ok=True)
        app = WorkerApp(
            w.app_id,
            broker=[f"kafka://{b.strip()}" for b in s.broker.split(",")],
            broker_credentials=faust_credentials(s.kafka_security),
            store=w.store,
            datadir=str(datadir),
            topic_partitions=s.partitions,
            topic_replication_factor=s.replication,
            processing_guarantee=w.processing_guarantee,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            producer_linger_ms=0,  # not a setting: 5 ms lost session updates at rebalances (see above)
            producer_max_batch_size=w.producer_max_batch_kb * 1024,
            broker_session_timeout=w.session_timeout_s,
            broker_heartbeat_interval=min(3.0, w.session_timeout_s / 3),
            broker_rebalance_timeout=max(2 * w.session_timeout_s, 10.0),
            broker_commit_interval=w.commit_interval_s,
            table_standby_replicas=0,
            web_enabled=True,
            web_port=w.web_port,
            web_bind=w.web_host,
            web_in_thread=False,
        )
        app.fetch_max_wait_ms = w.fetch_max_wait_ms
        return app

    def _register(self) -> None:
        app, w = self.app, self.settings.worker

        @app.agent(self.inbound_topic, concurrency=1, name="streamrec.worker.events")
        async def process(stream: faust.StreamT) -> None:
            try:
                async for events in stream.take_events(w.batch_max_events, within=w.batch_max_ms / 1000.0):
                    await self.acks.submit(events)
                await self.acks.drain()
            finally:
                self.acks.abandon()

        @app.task
        async def follow_items() -> None:
            await self.items_follower.run()

        @app.task
        async def follow_models() -> None:
            await self.models_follower.run()

        @app.task
        async def load_pinned() -> None:
            assert self.slot.fit is not None
            await self.arms.load_pinned(self.swapper.load, self.slot.fit, self._adopt_pinned, self._die)

        @app.task
        async def swap_models() -> None:
            await self.models_follower.caught_up.wait()  # load the newest, not every old one
            await self.swapper.run()

        @app.timer(interval=w.probe_interval_s)
        async def probe() -> None:
            await self._probe()

        @app.timer(interval=min(1.0, w.training_every_s))
        async def flush_training() -> None:
            await self.training.maybe_flush()

        @app.on_partitions_assigned.connect
        async def on_assigned(sender: Any, assigned: set[TP], **_: Any) -> None:
            self.acks.reset()
            mine = sorted(tp.partition for tp in assigned if tp.topic == self.settings.topics.events)
            log.info("assigned partitions %s of %s", mine, self.settings.topics.events)

        register_pages(app, self.metrics, self.health)

    def _die(self, exc: BaseException) -> None:
        """A fatal error: stop like on SIGTERM (commit what was processed) and exit non-zero."""
        if self.fatal is None:
            self.fatal = exc
            log.critical("fatal error, stopping the worker: %r", exc, exc_info=exc)
            os.kill(os.getpid(), signal.SIGTERM)

    # -- sends ------------------------------------------------------------------------------
    async def _send_dlq(self, key: bytes | None, value: bytes) -> Any:
        return await self.dlq_topic.send(key=key, value=value)

    async def _send_training(self, value: bytes) -> Any:
        return await self.training_topic.send(value=value)

    # -- catalogue and models ---------------------------------------------------------------
    async def _on_items(self, records: list[ConsumerRecord]) -> None:
        updates = parse_records(records)
        if not updates:
            return
        flags = {u.item_id: u.available for u in updates}
        await self.feed_sink.set_available(flags)
        if self.arms.popularity is not None:
            self.arms.popularity.set_available(flags)
        while True:
            # Embedded outside the lock (the text tower runs a language model per item); a model
            # swapped in meanwhile has its own tower: embed again for it.
            runner = self.slot.current
            embedded = await self._embed_cold_items(runner, updates)
            async with self._catalogue_lock:
                if self.slot.current is not runner:
                    continue
                self.catalogue.record(updates, embedded, runner and runner.text_digest)
                for held in (runner, *self.arms.held()):
                    if held is not None:  # pinned runners get the vectors of a text tower they share
                        await self._model_call(self.catalogue.apply, held, updates)
                break
        self.metrics.catalogue_updates.inc(len(updates))

    async def _embed_cold_items(self, runner: Runner | None, updates: list[ItemUpdate]) -> dict[str, Any]:
        """Vectors from ``runner``'s text tower for the updates that need one (in a thread). A
        failure is logged and the items wait for their next update or model."""
        if runner is None:
            return {}
        cold = self.catalogue.to_embed(runner, updates)
        if not cold:
            return {}
        try:
            return await asyncio.get_running_loop().run_in_executor(None, embed_updates, runner, cold)
        except Exception:
            log.exception("embedding %d new items from text failed; they wait for a vector", len(cold))
            self.metrics.cold_start_failures.inc()
            return {}

    async def _on_models(self, records: list[ConsumerRecord]) -> None:
        for r in records:
            self.swapper.announce(r.value)

    def _load_failed(self, _version: str, _exc: BaseException) -> None:
        self.metrics.model_load_failures.inc()

    async def _install_model(self, runner: Runner) -> None:
        async with self._catalogue_lock:
            await self._catch_up(runner)
            self.slot.swap(runner)

    # -- a version on trial (HotSwapper's Trial) -------------------------------------------------
    def on_trial(self) -> str | None:
        return None if self.arms.canary is None else self.arms.canary[0].version

    async def begin(self, canary: Canary, runner: Runner) -> None:
        async with self._catalogue_lock:
            await self._catch_up(runner)
            self.arms.start_canary(canary, runner)

    async def settle(self, version: str) -> bool:
        async with self._catalogue_lock:  # the trial's runner took every catalogue update (arms.held)
            runner = self.arms.end_canary()
            if runner is None or runner.version != version:
                return False
            self.slot.swap(runner)
            return True

    async def _adopt_pinned(self, version: str, runner: Runner) -> None:
        async with self._catalogue_lock:
            await self._catch_up(runner)
            self.arms.install(version, runner)

    async def _catch_up(self, runner: Runner) -> None:
        """Every catalogue update seen so far onto a freshly loaded runner (under the catalogue
        lock). Text-only items embedded by another text tower are re-embedded by the new one first
        (in a thread, while the old model keeps scoring), then replayed onto it."""
        stale = self.catalogue.stale(runner)
        embedded = await asyncio.get_running_loop().run_in_executor(None, embed_updates, runner, stale)
        await self._model_call(self.catalogue.replay_onto, runner, embedded)

    async def _model_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a runner call on the scoring thread, serialised with ``recommend``."""
        return await asyncio.get_running_loop().run_in_executor(self.pipeline.scorer.executor, fn, *args)

    def _on_swap(self, runner: Runner) -> None:
        self.metrics.set_model(runner.version, runner.choice)
        self.metrics.model_swaps.inc()
        self.health.model_version = runner.version

    # -- health -----------------------------------------------------------------------------
    def _on_redis_error(self, exc: BaseException) -> None:
        self.metrics.redis_errors.inc()
        self.health.redis_ok = False
        self.metrics.ready.set(0)

    def _on_redis_ok(self) -> None:
        self.health.redis_ok = True

    async def _probe(self) -> None:
        self.health.kafka_ok = await kafka_answers(self.settings.broker, self.kafka_sec.get("ssl_context"))
        self.health.redis_ok = await asyncio.get_running_loop().run_in_executor(None, self.feed_sink.ping)
        lag = partition_lag(self.app.consumer, self.settings.topics.events, self.acks.processed)
        self.health.progress.observe(lag, self.acks.processed)
        self.metrics.set_lag(lag)
        self.metrics.ready.set(1 if self.health.ready else 0)

    def close(self) -> None:
        self.pipeline.close()
        self.feed_sink.close()
