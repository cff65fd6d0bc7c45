"""Dead-letter sink for events that fail validation (or whose processing raised).

Delivery guarantee: at-least-once. The dead letter is handed to the faust producer before the
source event is acked, and faust flushes its producer before committing offsets, so a crash
can repeat a dead letter (after a restart) but never lose one.

Envelope: :mod:`streamrec.dlq` (shared with ``streamrec replay``). The message key is the
original key, so a user's dead letters stay together.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from streamrec.dlq import dead_letter
from streamrec.streams.records import Record

SendFn = Callable[[bytes | None, bytes], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str
    topic: str
    partition: int
    offset: int
    timestamp: float
    key: bytes | None
    value: bytes | None


def envelope(record: Record, reason: str) -> bytes:
    """The DLQ message value for ``record`` refused for ``reason`` (format: :mod:`streamrec.dlq`)."""
    source = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
    }
    return dead_letter(record.value, reason, source, record.key)


def parse_envelope(raw: bytes) -> DeadLetter:
    """Read a DLQ message back (for tools and tests)."""
    obj = json.loads(raw)
    src = obj["source"]
    value = None if obj["value_b64"] is None else base64.b64decode(obj["value_b64"])
    key = None if obj["key"] is None else obj["key"].encode()
    return DeadLetter(obj["reason"], src["topic"], src["partition"], src["offset"], src["timestamp"], key, value)


class DeadLetterSink:
    """Routes refused records to the DLQ topic through ``send`` (the faust topic's send)."""

    def __init__(self, send: SendFn, on_dead_letter: Callable[[str], None] | None = None) -> None:
        self._send = send
        self._on_dead_letter = on_dead_letter

    async def put(self, record: Record, reason: str) -> None:
        await self._send(record.key, envelope(record, reason))
        if self._on_dead_letter is not None:
            self._on_dead_letter(reason)
