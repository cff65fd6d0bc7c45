"""The model announcement on ``streamrec.models``: built, sent and parsed here, nowhere else.

Value: JSON ``{"version", "sha256", "uri", "parent", "created", "metrics"}``, a pointer to one
published artifact (the registry resolves ``version``/``uri``; ``sha256`` is its digest). The
topic is compacted and every announcement uses the same key, so the latest value is the
version every (re)starting worker converges on; announcing an older version is a rollback.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

ANNOUNCEMENT_KEY = "model"


class _Producer(Protocol):
    """What sending needs of a kafka-python producer (JSON value serializer, str keys)."""

    def send(self, topic: str, key: Any = None, value: Any = None) -> Any: ...


def build_announcement(
    version: str, sha256: str, uri: str, parent: str | None, created: float, metrics: dict[str, Any]
) -> dict[str, Any]:
    """The announcement of one published version."""
    return {"version": version, "sha256": sha256, "uri": uri, "parent": parent, "created": created, "metrics": metrics}


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
