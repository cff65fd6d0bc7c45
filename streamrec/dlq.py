"""Dead-letter records: what a refused event becomes on ``streamrec.events.dlq``. One format
for every producer of dead letters (the stream worker, ``streamrec replay``).

JSON: ``{"reason", "source", "key", "value_b64", "value"}``. ``source`` says where the event
came from (``{topic, partition, offset, timestamp}`` for the stream, ``{file, line}`` for a
replay); ``value_b64`` is the original bytes exactly (replayable, even when not UTF-8);
``value`` a readable excerpt (first 1 KiB, invalid UTF-8 replaced) for operators.
"""

from __future__ import annotations

import base64
import json
from typing import Any

PREVIEW_BYTES = 1024


def dead_letter(original: bytes | None, reason: str, source: dict[str, Any], key: bytes | None = None) -> bytes:
    body = {
        "reason": reason,
        "source": source,
        "key": None if key is None else key.decode("utf-8", "replace"),
        "value_b64": None if original is None else base64.b64encode(original).decode(),
        "value": None if original is None else original[:PREVIEW_BYTES].decode("utf-8", "replace"),
    }
    return json.dumps(body, separators=(",", ":")).encode()


def original_bytes(record: dict[str, Any]) -> bytes | None:
    """The refused event's bytes, exactly as they arrived."""
    raw = record.get("value_b64")
    return None if raw is None else base64.b64decode(raw)
