"""A user's erasure on ``streamrec.erasures`` (docs/privacy.md, docs/contracts.md).

Message: key = user id (so it lands on the partition of the user's events: the topic has the
events topic's partition count and the same key partitioner), value JSON ``{"v": 1, "user_id":
str, "requested_at": epoch seconds}``, built here for the CLI and the API. The topic is
compacted: the latest erasure of each user stays, so a process that reads it from the start (the
trainer) knows every erased user and when.

"Before the erasure" means *published* before ``requested_at``: an event whose Kafka record
timestamp is older (the worker), an example whose source event is (the trainer). Kafka
timestamps are the producers' clocks, so the cut is as good as their skew (NTP: milliseconds).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from streamrec.contracts import compact_json

VERSION: Final = 1
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Erasure:
    user_id: str
    requested_at: float  # epoch seconds; what the user published before this is erased


def encode_erasure(erasure: Erasure) -> bytes:
    return compact_json.dumps({"v": VERSION, "user_id": erasure.user_id, "requested_at": erasure.requested_at})


def erasure_records(user_ids: Iterable[str], requested_at: float) -> list[tuple[str, bytes]]:
    """``(key, value)`` of one erasure per distinct user, to publish on the erasure topic."""
    users = list(dict.fromkeys(user_ids))
    if not users or not all(users):
        raise ValueError("erasure needs one or more non-empty user ids")
    return [(u, encode_erasure(Erasure(u, round(requested_at, 3)))) for u in users]


def parse_erasure(key: bytes | None, value: bytes | None) -> Erasure | str:
    """The erasure, or the reason the message is not one. The key must be the user id: an
    erasure keyed otherwise is on another user's partition, where another worker owns the
    session."""
    if value is None:
        return "an erasure needs a value (a tombstone erases nothing)"
    try:
        obj = json.loads(value)
    except ValueError as exc:
        return f"malformed JSON: {exc}"
    if not isinstance(obj, dict) or obj.get("v") != VERSION:
        return f"not an erasure of format v{VERSION}"
    user_id, at = obj.get("user_id"), obj.get("requested_at")
    if not isinstance(user_id, str) or not user_id:
        return "user_id must be a non-empty string"
    if isinstance(at, bool) or not isinstance(at, int | float) or at != at:
        return "requested_at must be epoch seconds"
    if key is None or key.decode("utf-8", "replace") != user_id:
        return f"message key {key!r:.60} is not the erasure's user_id {user_id!r:.60}"
    return Erasure(user_id, float(at))


def latest_erasures(records: Iterable[Any]) -> dict[str, float]:
    """user -> the newest ``requested_at`` among erasure records (anything with ``key``, ``value``
    and ``offset``); a record that is not an erasure is logged and skipped."""
    out: dict[str, float] = {}
    for r in records:
        outcome = parse_erasure(r.key, r.value)
        if isinstance(outcome, str):
            log.warning("skipping erasure record at offset %d: %s", r.offset, outcome)
            continue
        out[outcome.user_id] = max(outcome.requested_at, out.get(outcome.user_id, outcome.requested_at))
    return out
