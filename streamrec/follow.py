"""Follow a topic from its first offset without a consumer group: the one implementation, for
the worker (``streamrec.items``, ``streamrec.models``), the trainer (``streamrec.items``) and tools
and tests (:func:`streamrec.kafka.read_topic`).

Every worker needs *every* catalogue update and model announcement, so these topics are not
consumed in the worker's consumer group (which would split their partitions between workers,
and, after a restart, resume after the last announcement instead of re-reading it). Each
process reads them without a group from the first offset: both are compacted, so the replay is
one record per item / model version. Handlers must be idempotent (upsert, swap-if-newer).
Synchronous code (the trainer, tools) runs a follower on its own event loop in a thread
(:class:`FollowerThread`) and drains what it read.

Delivery guarantee: at-least-once per process lifetime, from offset 0 at every start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
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
        try:
            await consumer.start()  # inside the try: a failed start must still close the client
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


class FollowerThread:
    """A :class:`TopicFollower` on its own event loop in a daemon thread, for synchronous code:
    the records it reads wait in a queue until :meth:`drain` takes them."""

    def __init__(self, bootstrap: str, topic: str, **client_kwargs: Any) -> None:
        self._records: queue.SimpleQueue[ConsumerRecord] = queue.SimpleQueue()
        self._loop = asyncio.new_event_loop()
        self.follower = TopicFollower(bootstrap, topic, self._put, **client_kwargs)
        self._task = self._loop.create_task(self.follower.run())
        self._thread = threading.Thread(target=self._run, name=f"follow-{topic}", daemon=True)
        self._thread.start()

    async def _put(self, records: list[ConsumerRecord]) -> None:
        for r in records:
            self._records.put(r)

    def _run(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(self._task)
        self._loop.close()

    def drain(self, timeout_s: float = 0.0) -> list[ConsumerRecord]:
        """Every record read so far, waiting up to ``timeout_s`` for the first one."""
        out: list[ConsumerRecord] = []
        with contextlib.suppress(queue.Empty):
            out.append(self._records.get(timeout=timeout_s) if timeout_s > 0 else self._records.get_nowait())
            while True:
                out.append(self._records.get_nowait())
        return out

    def read(self, min_count: int | None, timeout_s: float) -> list[ConsumerRecord]:
        """Records until ``min_count`` of them (None: all that arrive) or ``timeout_s`` passed."""
        deadline = time.monotonic() + timeout_s
        out: list[ConsumerRecord] = []
        while (min_count is None or len(out) < min_count) and (left := deadline - time.monotonic()) > 0:
            out.extend(self.drain(min(left, 0.2)))
        return out

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop following (the consumer leaves cleanly) and wait for the thread."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._task.cancel)
            self._thread.join(timeout_s)
