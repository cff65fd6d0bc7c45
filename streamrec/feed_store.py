"""Feeds in Redis: the client, the pipelined monotonic write and the read (the format and the
write rule: :mod:`streamrec.contracts.feed`)."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from streamrec.contracts.feed import WRITE_FEED_LUA, Feed, feed_key


def write_feeds(client: redis.Redis, prefix: str, feeds: Sequence[Feed], ttl_s: int) -> list[bool]:
    """Write many feeds in one pipelined round trip; returns which were applied (False = a
    newer feed was already there). Raises redis errors to the caller, which must not commit
    offsets until this returns."""
    script = client.register_script(WRITE_FEED_LUA)
    pipe = client.pipeline(transaction=False)
    for f in feeds:
        script(keys=[feed_key(prefix, f.user_id)], args=[f.offset, f.partition, f.pack(), ttl_s], client=pipe)
    return [bool(r) for r in pipe.execute()]


def get_feed(client: redis.Redis, user_id: str, prefix: str = "streamrec:feed:") -> Feed | None:
    """Read a user's feed, or None if there is none (yet, or expired)."""
    raw = client.hget(feed_key(prefix, user_id), "feed")
    return None if raw is None else Feed.unpack(raw)


def redis_client(url: str) -> redis.Redis:
    """A client with timeouts, so a dead Redis fails a call instead of hanging the worker."""
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30)
