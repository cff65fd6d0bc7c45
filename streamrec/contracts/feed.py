"""The feed contract in Redis (README, "Feed"): key layout, packed value, the monotonic write rule.

One key per user holds a hash ``{pos, part, feed}``; ``feed`` is one packed JSON value
(items, scores, model version, time generated, causing event, and per item the session item
that explains it) because a 50-member ZADD per
feed manages only 3-4k feeds/s from redis-py, while one packed value pipelined does 64k+/s.
The write is a Lua script so a reader never sees half a list and an older computation
(lower source offset on the same partition) never replaces a newer one; the Redis calls that
run it are in :mod:`streamrec.feed_store`.

Withdrawn items are filtered at read time: the workers keep the set of withdrawn catalogue items
at :func:`withdrawn_key` (from ``streamrec.items``), and the read script returns a feed with the
positions of the items in it that the set holds, which the reader drops. Filtering at read
time, rather than rewriting every feed that holds a withdrawn item, needs no index from items to
the feeds that hold them (K entries per user) and no scan of every feed: an item is gone from
all feeds as soon as one worker has added it to the set. The worker's next feed for the user
leaves the item out anyway (it is masked in the model's catalogue).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
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


# KEYS[1]=feed key, KEYS[2]=withdrawn set. Returns nil (no feed), or {feed json, {0-based
# positions of withdrawn items}}; the feed is decoded only while the set is not empty.
READ_FEED_LUA = """
local raw = redis.call('HGET', KEYS[1], 'feed')
if not raw then return false end
local gone = {}
if redis.call('SCARD', KEYS[2]) > 0 then
  for i, id in ipairs(cjson.decode(raw)['items']) do
    if redis.call('SISMEMBER', KEYS[2], id) == 1 then gone[#gone + 1] = i - 1 end
  end
end
return {raw, gone}
"""


def withdrawn_key(prefix: str) -> str:
    """The set of withdrawn item ids. A user id is percent-encoded in its key, so no user's
    feed key can end in ``:withdrawn`` after the prefix."""
    return prefix + ":withdrawn"


def feed_key(prefix: str, user_id: str) -> str:
    """Key of a user's feed. The user id is percent-encoded so that no id (``*``, ``:``,
    spaces, newlines) can reach a key outside the feed namespace or match another's pattern."""
    return prefix + quote(user_id, safe="")


@dataclass(frozen=True, slots=True)
class Feed:
    """A user's top-K as apps read it. ``because``: per item, the item of the user's session
    that explains it ("because you viewed ..."; None where no session item has a vector); empty
    in feeds written before it existed. ``arm``: the experiment arm the user is in (its policy
    made the feed: ``model_version`` is the version that scored it, ``popularity`` for that
    control); empty without an experiment and in feeds written before it existed."""

    user_id: str
    items: list[str]
    scores: list[float]
    model_version: str
    generated_at: float
    event_id: str
    partition: int
    offset: int
    because: list[str | None] = field(default_factory=list)
    arm: str = ""

    def pack(self) -> bytes:
        return compact_json.dumps(self)

    @classmethod
    def unpack(cls, raw: bytes | str) -> Feed:
        """Fields this version does not know (a newer writer's) are left out, so readers keep
        reading feeds that gained a field."""
        value = json.loads(raw)
        return cls(**{f.name: value[f.name] for f in fields(cls) if f.name in value})

    def without(self, positions: Sequence[int]) -> Feed:
        """This feed less the items at ``positions`` (withdrawn since it was written)."""
        if not positions:
            return self
        drop = set(positions)
        keep = [n for n in range(len(self.items)) if n not in drop]
        because = [self.because[n] for n in keep] if self.because else []
        return replace(
            self, items=[self.items[n] for n in keep], scores=[self.scores[n] for n in keep], because=because
        )


def feed_age_s(feed: Feed, now: float | None = None) -> float:
    """Seconds since the feed was computed (for freshness checks)."""
    return (time.time() if now is None else now) - feed.generated_at
