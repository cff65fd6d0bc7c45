"""Dead-letter records: what a refused event becomes on ``streamrec.events.dlq``. One format
for every producer of dead letters (the stream worker, ``streamrec replay``).

JSON: ``{"reason", "source", "key", "value_b64", "value"}``. ``source`` says where the event
came from (``{topic, partition, offset, timestamp}`` for the stream, ``{file, line}`` for a
replay); ``value_b64`` is the original bytes exactly (replayable, even when not UTF-8);
``value`` a readable excerpt (first 1 KiB, invalid UTF-8 replaced) for operators.

An original over 256 KiB keeps only its first 256 KiB, with ``truncated``, ``original_bytes``
and ``original_sha256``: a 10 MB event copied whole would make a ~14 MB dead letter, over the
producer's 1 MB request limit, and the worker would crash on it at every restart, halting its
partition. (Events over ``max_event_bytes`` are refused for their size, so nothing valid is cut.)
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from streamrec.contracts import compact_json

PREVIEW_BYTES = 1024
MAX_ORIGINAL_BYTES = 256 * 1024


def dead_letter(original: bytes | None, reason: str, source: dict[str, Any], key: bytes | None = None) -> bytes:
    body = {
        "reason": reason,
        "source": source,
        "key": None if key is None else key.decode("utf-8", "replace"),
        "value_b64": None if original is None else base64.b64encode(original).decode(),
        "value": None if original is None else original[:PREVIEW_BYTES].decode("utf-8", "replace"),
    }
    if original is not None and len(original) > MAX_ORIGINAL_BYTES:
        body["value_b64"] = base64.b64encode(original[:MAX_ORIGINAL_BYTES]).decode()
        body |= {"truncated": True, "original_bytes": len(original), "original_sha256": sha256(original).hexdigest()}
    return compact_json.dumps(body)


def original_bytes(record: dict[str, Any]) -> bytes | None:
    """The refused event's bytes as they arrived (the first 256 KiB when ``truncated``)."""
    raw = record.get("value_b64")
    return None if raw is None else base64.b64decode(raw)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead letter read back (tools and tests). ``topic``/``partition``/``offset`` are those of
    a stream source (None for a replayed file's ``{file, line}``)."""

    reason: str
    source: dict[str, Any]
    key: bytes | None
    value: bytes | None

    @property
    def topic(self) -> str | None:
        return self.source.get("topic")

    @property
    def partition(self) -> int | None:
        return self.source.get("partition")

    @property
    def offset(self) -> int | None:
        return self.source.get("offset")


def parse_dead_letter(raw: bytes) -> DeadLetter:
    """Read a DLQ message value back."""
    obj = json.loads(raw)
    key = None if obj["key"] is None else obj["key"].encode()
    return DeadLetter(obj["reason"], obj["source"], key, original_bytes(obj))
