"""The feed contract in Redis (README, "Feed"): key layout, packed value, the monotonic write rule.

One key per user holds a hash ``{pos, part, feed}``; ``feed`` is one packed JSON value
(items, scores, model version, time generated, causing event, and per item the session item
that explains it) because a 50-member ZADD per
feed manages only 3-4k feeds/s from redis-py, while one packed value pipelined does 64k+/s.
The write is a Lua script so a reader never sees half a list and an older computation
(lower source offset on the same partition) never replaces a newer one; the Redis calls that
run it are in :mod:`streamrec.feed_store`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from urllib.parse import quote

from streamrec.contracts import compact_json

# KEYS[1]=feed key; ARGV: pos, partition, feed json, ttl seconds. Returns 1 if written.
WRITE_FEED_LUA = """
local cur = redis.call('HMGET', KEYS[1], 'pos', 'part')
if cur[1] and cur[2] == ARGV[2] and tonumber(cur[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'pos', ARGV[1], 'part', ARGV[2], 'feed', ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""


def feed_key(prefix: str, user_id: str) -> str:
    """Key of a user's feed. The user id is percent-encoded so that no id (``*``, ``:``,
    spaces, newlines) can reach a key outside the feed namespace or match another's pattern."""
    return prefix + quote(user_id, safe="")


@dataclass(frozen=True, slots=True)
class Feed:
    """A user's top-K as apps read it. ``because``: per item, the item of the user's session
    that explains it ("because you viewed ..."; None where no session item has a vector); empty
    in feeds written before it existed."""

    user_id: str
    items: list[str]
    scores: list[float]
    model_version: str
    generated_at: float
    event_id: str
    partition: int
    offset: int
    because: list[str | None] = field(default_factory=list)

    def pack(self) -> bytes:
        return compact_json.dumps(self)

    @classmethod
    def unpack(cls, raw: bytes | str) -> Feed:
        """Fields this version does not know (a newer writer's) are left out, so readers keep
        reading feeds that gained a field."""
        value = json.loads(raw)
        return cls(**{f.name: value[f.name] for f in fields(cls) if f.name in value})


def feed_age_s(feed: Feed, now: float | None = None) -> float:
    """Seconds since the feed was computed (for freshness checks)."""
    return (time.time() if now is None else now) - feed.generated_at
