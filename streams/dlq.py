"""Dead-letter sink for events that fail validation (or whose processing raised).

Delivery guarantee: at-least-once. The dead letter is handed to the faust producer before the
source event is acked, and faust flushes its producer before committing offsets, so a crash
can repeat a dead letter (after a restart) but never lose one.

Envelope (built and read back): :mod:`streamrec.contracts.dead_letters` (shared with
``streamrec replay``). The message key is the original key, so a user's dead letters stay
together.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from streamrec.contracts.dead_letters import dead_letter
from streamrec.streams.records import Record

SendFn = Callable[[bytes | None, bytes], Awaitable[Any]]


def envelope(record: Record, reason: str) -> bytes:
    """The DLQ message value for ``record`` refused for ``reason`` (format: :mod:`streamrec.contracts.dead_letters`)."""
    source = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
    }
    return dead_letter(record.value, reason, source, record.key)


class DeadLetterSink:
    """Routes refused records to the DLQ topic through ``send`` (the faust topic's send)."""

    def __init__(self, send: SendFn, on_dead_letter: Callable[[str], None] | None = None) -> None:
        self._send = send
        self._on_dead_letter = on_dead_letter

    async def put(self, record: Record, reason: str) -> None:
        await self._send(record.key, envelope(record, reason))
        if self._on_dead_letter is not None:
            self._on_dead_letter(reason)
