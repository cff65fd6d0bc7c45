"""Dead-letter records: what a refused event becomes on ``streamrec.events.dlq``.

The original bytes are kept exactly (base64 when they are not UTF-8) so that a fixed
consumer can re-publish them; the reason is the validator's string; the source says where
the event came from (topic/partition/offset for the stream, file/line for a replay).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any


def dead_letter(original: bytes | None, reason: str, source: dict[str, Any]) -> bytes:
    record: dict[str, Any] = {"reason": reason, "source": source, "dead_lettered_at": time.time()}
    if original is None:
        record["original"] = None
    else:
        try:
            record["original"] = original.decode("utf-8")
        except UnicodeDecodeError:
            record["original_b64"] = base64.b64encode(original).decode()
    return json.dumps(record, separators=(",", ":")).encode()


def original_bytes(record: dict[str, Any]) -> bytes | None:
    """The refused event's bytes, exactly as they arrived."""
    if "original_b64" in record:
        return base64.b64decode(record["original_b64"])
    orig = record.get("original")
    return None if orig is None else str(orig).encode("utf-8")
