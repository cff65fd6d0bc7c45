"""Follow a broadcast topic (``streamrec.items``, ``streamrec.models``) from its beginning.

Every worker needs *every* catalogue update and model announcement, so these topics are not
consumed in the worker's consumer group (which would split their partitions between workers,
and, after a restart, resume after the last announcement instead of re-reading it). Each
worker reads them without a group from the first offset: both are compacted, so the replay is
one record per item / model version. Handlers must be idempotent (upsert, swap-if-newer).

Delivery guarantee: at-least-once per process lifetime, from offset 0 at every start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

Handler = Callable[[list[ConsumerRecord]], Awaitable[None]]


class TopicFollower:
    def __init__(self, bootstrap: str, topic: str, handler: Handler, **client_kwargs: Any) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.handler = handler
        self.client_kwargs = client_kwargs
        self.caught_up = asyncio.Event()  # set once the records present at start were handled

    async def run(self) -> None:
        """Follow forever; reconnects after broker errors (a restarted broker, a network blip)."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                log.warning("following %s failed (%s); retrying in 1s", self.topic, exc)
                await asyncio.sleep(1.0)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=f"streamrec-follow-{self.topic}",
            **self.client_kwargs,
        )
        await consumer.start()
        try:
            parts = consumer.partitions_for_topic(self.topic)
            while not parts:
                await consumer.topics()  # refresh metadata until the topic exists
                parts = consumer.partitions_for_topic(self.topic)
                if not parts:
                    await asyncio.sleep(0.5)
            tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            if all(v == 0 for v in end.values()):
                self.caught_up.set()
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=1000)
                for records in batches.values():
                    try:
                        await self.handler(records)
                    except Exception:  # one bad record (a vector of the wrong width) must not stop the worker
                        log.exception("handling %d records of %s failed; skipped", len(records), self.topic)
                if not self.caught_up.is_set():
                    positions = [await consumer.position(tp) for tp in tps]
                    if all(pos >= end[tp] for pos, tp in zip(positions, tps, strict=True)):
                        self.caught_up.set()
        finally:
            await consumer.stop()
