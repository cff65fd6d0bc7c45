"""The event contract (README, "Event") and its validator.

Producers and workers share this one validator so that what a producer refuses is exactly
what a worker would send to the dead-letter topic. It never raises on bad input: it returns
a reason string, because a raised exception inside a faust agent is acked and skipped
(faust acks in a ``finally``), which would lose the event instead of dead-lettering it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from streamrec.contracts import compact_json

EVENT_TYPES: Final = ("view", "click", "cart", "purchase")
REQUIRED: Final = ("event_id", "user_id", "item_id", "ts")
ALLOWED: Final = frozenset((*REQUIRED, "type"))
MAX_ID_CHARS: Final = 256
# Far-future guard: a clock a day ahead is a broken producer, and a millisecond timestamp
# (1.7e12) read as seconds lands 50,000 years ahead and would pin every feed's ordering.
MAX_FUTURE_SKEW_S: Final = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Event:
    """A valid event. ``ts`` is epoch seconds whatever the producer sent."""

    event_id: str
    user_id: str
    item_id: str
    type: str
    ts: float

    def to_json(self) -> bytes:
        return compact_json.dumps(self)


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why an event was refused; goes to the DLQ with the original bytes."""

    reason: str


def _parse_ts(value: Any, now: float) -> float | str:
    if isinstance(value, bool):
        return "ts must be epoch seconds or ISO-8601, got a boolean"
    if isinstance(value, int | float):
        ts = float(value)
    elif isinstance(value, str):
        try:
            ts = float(value)
        except ValueError:
            try:
                dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return f"ts {value[:40]!r} is neither epoch seconds nor ISO-8601"
            if dt.tzinfo is None:
                return f"ts {value[:40]!r} has no timezone (ISO-8601 needs Z or +hh:mm)"
            ts = dt.timestamp()
    else:
        return f"ts must be epoch seconds or ISO-8601, got {type(value).__name__}"
    if not math.isfinite(ts) or ts < 0:
        return f"ts {value!r} is not a finite time after 1970"
    if ts > now + MAX_FUTURE_SKEW_S:
        hint = " (milliseconds? ts is in seconds)" if ts > 1e11 else ""
        return f"ts {value!r} is more than a day in the future{hint}"
    return ts


def _check_id(obj: dict[str, Any], name: str) -> str | None:
    value = obj[name]
    if not isinstance(value, str):
        return f"{name} must be a string, got {type(value).__name__}"
    if not value or not value.strip():
        return f"{name} is empty"
    if len(value) > MAX_ID_CHARS:
        return f"{name} is longer than {MAX_ID_CHARS} characters"
    return None


def validate_obj(obj: Any, now: float | None = None) -> Event | Invalid:
    """Validate a decoded JSON value against the contract."""
    if not isinstance(obj, dict):
        return Invalid(f"event must be a JSON object, got {type(obj).__name__}")
    missing = [f for f in REQUIRED if f not in obj]
    if missing:
        return Invalid("missing field(s): " + ", ".join(missing))
    unknown = sorted(set(obj) - ALLOWED)
    if unknown:
        return Invalid("unknown field(s): " + ", ".join(unknown[:5]))
    for name in ("event_id", "user_id", "item_id"):
        reason = _check_id(obj, name)
        if reason:
            return Invalid(reason)
    etype = obj.get("type", "click")
    if etype not in EVENT_TYPES:
        return Invalid(f"type {str(etype)[:40]!r} is not one of {'|'.join(EVENT_TYPES)}")
    ts = _parse_ts(obj["ts"], time.time() if now is None else now)
    if isinstance(ts, str):
        return Invalid(ts)
    return Event(obj["event_id"], obj["user_id"], obj["item_id"], etype, ts)


def validate_bytes(raw: bytes | None, max_bytes: int, now: float | None = None) -> Event | Invalid:
    """Validate an event as it arrives from Kafka (size, UTF-8, JSON, then contract)."""
    if raw is None:
        return Invalid("empty message (tombstone)")
    if len(raw) > max_bytes:
        return Invalid(f"event is {len(raw)} bytes, over the {max_bytes}-byte limit")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Invalid(f"not valid UTF-8 at byte {exc.start}")
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return Invalid(f"malformed JSON: {getattr(exc, 'msg', 'too deeply nested')} at char {getattr(exc, 'pos', 0)}")
    return validate_obj(obj, now)
