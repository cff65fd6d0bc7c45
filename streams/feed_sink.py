"""Feed sink: one pipelined Redis round trip per micro-batch, retried until it succeeds.

Delivery guarantee: at-least-once, idempotent. The batch's offsets are acked only after
:meth:`FeedSink.write` returns, so a crash before that re-delivers the events and the feeds
are computed again. Re-writes are harmless: ``streamrec.feed_store.write_feeds`` runs a Lua script
that replaces a user's feed atomically and refuses a feed caused by an older event
(lower offset on the same partition), so a replayed or slow computation never moves a feed
backwards.

Redis errors are retried with exponential backoff (50 ms doubling to ``max_s``, default 30 s)
forever: the events wait in order (the agent is blocked on this batch), nothing is skipped and
nothing is reordered, and the consumer keeps heart-beating because the blocking call runs in a
thread, not on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

from streamrec.contracts.feed import Feed
from streamrec.feed_store import delete_feeds, set_withdrawn, write_feeds

log = logging.getLogger(__name__)

# Retried forever: Redis down or restarting, still loading its dataset, or a replica during a
# failover. Anything else (WRONGTYPE on a feed key, a script error) is a bug or a poisoned key:
# it propagates and stops the worker non-zero, without committing the batch.
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.ReadOnlyError)


class FeedSink:
    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        ttl_s: int,
        *,
        base_s: float = 0.05,
        max_s: float = 30.0,
        on_error: Callable[[BaseException], None] | None = None,
        on_success: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.base_s = base_s
        self.max_s = max_s
        self._on_error = on_error
        self._on_success = on_success
        # One thread: writes stay in batch order, and the event loop never blocks on a socket
        # (a 5 s connect timeout on the loop would miss heartbeats of a 6 s session timeout).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feed-sink")

    async def write(self, feeds: Sequence[Feed]) -> list[bool]:
        """Write ``feeds``; returns which were applied (False = a newer feed was there).
        Returns only once Redis accepted the round trip; cancellation is the only way out."""
        if not feeds:
            return []
        return await self._retried(write_feeds, self.client, self.prefix, feeds, self.ttl_s)

    async def delete(self, user_ids: Sequence[str]) -> None:
        """Delete erased users' feeds; retried like feed writes, in order with them."""
        await self._retried(delete_feeds, self.client, self.prefix, user_ids)

    async def set_available(self, available: dict[str, bool]) -> None:
        """Withdrawn items into the set feed reads filter by, items available again out of it
        (streamrec.contracts.feed); retried like feed writes, in order with them."""
        if available:
            await self._retried(set_withdrawn, self.client, self.prefix, available)

    async def _retried(self, call: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        delay = self.base_s
        attempt = 0
        while True:
            attempt += 1
            try:
                out = await loop.run_in_executor(self._executor, call, *args)
            except TRANSIENT as exc:
                if self._on_error is not None:
                    self._on_error(exc)
                if attempt == 1 or attempt % 10 == 0:
                    log.warning("Redis write failed (attempt %d, retry in %.2fs): %s", attempt, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_s)
                continue
            if attempt > 1:
                log.info("Redis write succeeded after %d attempts", attempt)
            if self._on_success is not None:
                self._on_success()
            return out

    def ping(self) -> bool:
        """Blocking reachability check (run it in a thread)."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.client.close()
