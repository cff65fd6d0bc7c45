"""The model announcement on ``streamrec.models``: built, sent and parsed here, nowhere else.

Value: JSON ``{"version", "sha256", "uri", "parent", "created", "metrics"}``, a pointer to one
published artifact (the registry resolves ``version``/``uri``; ``sha256`` is its digest). The
topic is compacted and every announcement uses the same key, so the latest value is the
version every (re)starting worker converges on; announcing an older version is a rollback.

Two optional fields (absent: today's meaning, the version serves everyone):

- ``canary``: ``{"stable": VERSION, "share": PERCENT}``: the version serves only a stable-hashed
  ``share`` of the users (:func:`in_canary`), the ``stable`` version everyone else, until the
  online trainer's live gate announces it again without ``canary`` (rolled out) or announces the
  stable version (rolled back). The latest value still says everything a restarting worker needs:
  both versions and the split.
- ``rolled_back``: on the announcement of a stable version that replaces a canary the live gate
  refused: ``{"version", "live"}``, what was refused and the hit rates it was refused on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from streamrec.contracts.user_hash import user_digest, user_point

ANNOUNCEMENT_KEY = "model"


@dataclass(frozen=True, slots=True)
class Canary:
    """A version on trial: ``version`` serves ``share`` percent of the users, ``stable`` the rest."""

    version: str
    stable: str
    share: float


class _Producer(Protocol):
    """What sending needs of a kafka-python producer (JSON value serializer, str keys)."""

    def send(self, topic: str, key: Any = None, value: Any = None) -> Any: ...


def build_announcement(
    version: str, sha256: str, uri: str, parent: str | None, created: float, metrics: dict[str, Any]
) -> dict[str, Any]:
    """The announcement of one published version."""
    return {"version": version, "sha256": sha256, "uri": uri, "parent": parent, "created": created, "metrics": metrics}


def as_canary(announcement: dict[str, Any], stable: str, share: float) -> dict[str, Any]:
    """``announcement`` sent as a canary beside ``stable`` for ``share`` percent of the users."""
    return {**announcement, "canary": {"stable": stable, "share": share}}


def canary_of(announcement: dict[str, Any]) -> Canary | None:
    """The canary an announcement starts, None for a version that serves everyone (or a ``canary``
    field this code cannot read: serving the announced version to everyone is the old meaning)."""
    spec = announcement.get("canary")
    if not isinstance(spec, dict):
        return None
    stable, share = spec.get("stable"), spec.get("share")
    if not isinstance(stable, str) or not stable or not isinstance(share, int | float) or not 0 < share < 100:
        return None
    return Canary(announcement["version"], stable, float(share))


def in_canary(canary: Canary, user_id: str) -> bool:
    """Whether ``user_id`` is served the canary: blake2b of (canary version, user) below its share,
    so every worker and a restarted one agree, and each new canary tries a different set of users."""
    return user_point(user_digest(canary.version, user_id)) < canary.share / 100.0


def send_announcement(producer: _Producer, topic: str, announcement: dict[str, Any], timeout_s: float = 30.0) -> None:
    """Publish ``announcement`` on ``topic`` and wait until the broker acked it."""
    producer.send(topic, key=ANNOUNCEMENT_KEY, value=announcement).get(timeout=timeout_s)


def parse_announcement(value: bytes | None) -> dict[str, Any] | None:
    """The announcement in a record value, or None when it is not one (no non-empty version)."""
    if value is None:
        return None
    try:
        obj = json.loads(value)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("version"), str) or not obj["version"]:
        return None
    return obj
