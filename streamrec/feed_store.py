"""Feeds in Redis: the client, the pipelined monotonic write and the read (the format and the
write rule: :mod:`streamrec.contracts.feed`)."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio

from streamrec.config import RedisTls
from streamrec.contracts.feed import READ_FEED_LUA, WRITE_FEED_LUA, Feed, feed_key, withdrawn_key
from streamrec.errors import UserError

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


def delete_feeds(client: redis.Redis, prefix: str, user_ids: Sequence[str]) -> int:
    """Delete the feeds of erased users (one round trip); returns how many existed."""
    return int(client.delete(*(feed_key(prefix, u) for u in user_ids))) if user_ids else 0


def set_withdrawn(client: redis.Redis, prefix: str, available: dict[str, bool]) -> None:
    """Record catalogue availability for read-time filtering: withdrawn items into the set,
    items available again out of it (one pipelined round trip)."""
    key = withdrawn_key(prefix)
    gone = [item for item, ok in available.items() if not ok]
    back = [item for item, ok in available.items() if ok]
    pipe = client.pipeline(transaction=False)
    for start in range(0, max(len(gone), len(back)), 1000):
        if gone[start : start + 1000]:
            pipe.sadd(key, *gone[start : start + 1000])
        if back[start : start + 1000]:
            pipe.srem(key, *back[start : start + 1000])
    pipe.execute()


def is_withdrawn(client: redis.Redis, prefix: str, item_id: str) -> bool:
    return bool(client.sismember(withdrawn_key(prefix), item_id))


def _filtered(reply: list[Any] | None) -> Feed | None:
    return None if reply is None else Feed.unpack(reply[0]).without(reply[1])


def _read_keys(prefix: str, user_id: str) -> list[str]:
    return [feed_key(prefix, user_id), withdrawn_key(prefix)]


def get_feed(client: redis.Redis, user_id: str, prefix: str = "streamrec:feed:") -> Feed | None:
    """Read a user's feed, or None if there is none (yet, or expired); items withdrawn from the
    catalogue since it was written are left out (one round trip: the read script)."""
    return _filtered(client.register_script(READ_FEED_LUA)(keys=_read_keys(prefix, user_id)))


async def get_feed_async(client: redis.asyncio.Redis, user_id: str, prefix: str) -> Feed | None:
    """:func:`get_feed` on an asyncio client: the API serves its reads on one event loop, where a
    blocking call would stall every request behind a slow one, and a thread hop per read costs
    CPU the 2 cores do not have to spare."""
    return _filtered(await client.register_script(READ_FEED_LUA)(keys=_read_keys(prefix, user_id)))


CLIENT_TIMEOUTS = {"socket_timeout": 5, "socket_connect_timeout": 5, "health_check_interval": 30}
NO_TLS = RedisTls()


def tls_options(url: str, tls: RedisTls) -> dict[str, Any]:
    """redis-py's TLS options for ``url``: none for ``redis://``/``unix://`` (where TLS files set are
    an error, so a forgotten ``rediss://`` does not silently send feeds in clear); for ``rediss://``,
    every file read now, so a missing or bad one fails here in one line."""
    files = {"ca_file": tls.ca_file, "cert_file": tls.cert_file, "key_file": tls.key_file}
    if not url.startswith("rediss://"):
        if any(files.values()):
            raise UserError("redis_tls files are set but the Redis URL is not rediss://")
        return {}
    for name, path in files.items():
        if path is not None and not path.is_file():
            raise UserError(f"redis_tls.{name}: {path} is not a file")
    try:
        ctx = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    except ssl.SSLError as exc:
        raise UserError(f"redis_tls.ca_file: {tls.ca_file} holds no PEM certificate ({exc.reason})") from None
    if tls.cert_file and tls.key_file:
        try:
            ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
        except ssl.SSLError:
            why = "not a PEM certificate and its matching key"
            raise UserError(f"redis_tls.cert_file/key_file: {tls.cert_file}, {tls.key_file}: {why}") from None
    return {
        "ssl_ca_certs": str(tls.ca_file) if tls.ca_file else None,
        "ssl_certfile": str(tls.cert_file) if tls.cert_file else None,
        "ssl_keyfile": str(tls.key_file) if tls.key_file else None,
        "ssl_cert_reqs": "none" if tls.verify == "none" else "required",
        "ssl_check_hostname": tls.verify == "full",
    }


def redis_client(url: str, tls: RedisTls = NO_TLS, **timeouts: float) -> redis.Redis:
    """A client with timeouts, so a dead Redis fails a call instead of hanging the worker; every
    Redis client of streamrec is built here (the registry passes longer timeouts)."""
    return redis.Redis.from_url(url, **(CLIENT_TIMEOUTS | timeouts), **tls_options(url, tls))


def redis_client_async(url: str, tls: RedisTls = NO_TLS) -> redis.asyncio.Redis:
    """The same on asyncio (connections open in the loop that first uses them)."""
    return redis.asyncio.Redis.from_url(url, **CLIENT_TIMEOUTS, **tls_options(url, tls))
