"""Feeds in Redis: the client, the pipelined monotonic write and the read (the format and the
write rule: :mod:`streamrec.contracts.feed`)."""

from __future__ import annotations

from collections.abc import Sequence

import redis
import redis.asyncio

from streamrec.contracts.feed import WRITE_FEED_LUA, Feed, feed_key

FEED_FIELD = "feed"  # the hash field holding the packed feed (the others order the writes)


def write_feeds(client: redis.Redis, prefix: str, feeds: Sequence[Feed], ttl_s: int) -> list[bool]:
    """Write many feeds in one pipelined round trip; returns which were applied (False = a
    newer feed was already there). Raises redis errors to the caller, which must not commit
    offsets until this returns."""
    script = client.register_script(WRITE_FEED_LUA)
    pipe = client.pipeline(transaction=False)
    for f in feeds:
        script(keys=[feed_key(prefix, f.user_id)], args=[f.offset, f.partition, f.pack(), ttl_s], client=pipe)
    return [bool(r) for r in pipe.execute()]


def _feed_or_none(raw: bytes | None) -> Feed | None:
    return None if raw is None else Feed.unpack(raw)


def get_feed(client: redis.Redis, user_id: str, prefix: str = "streamrec:feed:") -> Feed | None:
    """Read a user's feed, or None if there is none (yet, or expired)."""
    return _feed_or_none(client.hget(feed_key(prefix, user_id), FEED_FIELD))


async def get_feed_async(client: redis.asyncio.Redis, user_id: str, prefix: str) -> Feed | None:
    """:func:`get_feed` on an asyncio client: the API serves its reads on one event loop, where a
    blocking call would stall every request behind a slow one, and a thread hop per read costs
    CPU the 2 cores do not have to spare."""
    return _feed_or_none(await client.hget(feed_key(prefix, user_id), FEED_FIELD))


CLIENT_TIMEOUTS = {"socket_timeout": 5, "socket_connect_timeout": 5, "health_check_interval": 30}


def redis_client(url: str) -> redis.Redis:
    """A client with timeouts, so a dead Redis fails a call instead of hanging the worker."""
    return redis.Redis.from_url(url, **CLIENT_TIMEOUTS)


def redis_client_async(url: str) -> redis.asyncio.Redis:
    """The same on asyncio (connections open in the loop that first uses them)."""
    return redis.asyncio.Redis.from_url(url, **CLIENT_TIMEOUTS)
