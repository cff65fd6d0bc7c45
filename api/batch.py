"""The body of ``POST /v1/events``: one event or a list, each checked by the worker's own
validator (:mod:`streamrec.contracts.events`), so what the API accepts is exactly what a worker
would process, and what it refuses is what a worker would dead-letter."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from streamrec.contracts.events import Event, Invalid, validate_bytes


class BadBody(Exception):
    """The body as a whole is unusable (not JSON, not an event or a list of them, too many)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Checked:
    """The valid events, and each refused one as ``{"index", "reason"}`` (index in the body)."""

    events: list[Event] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)


def check_events(body: bytes, max_event_bytes: int, max_events: int, now: float | None = None) -> Checked:
    """Parse and validate a body. An event is measured as its compact JSON, the form the API
    would publish it in, against the same byte limit the worker enforces."""
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadBody(400, f"body is not JSON: {getattr(exc, 'msg', 'too deeply nested')}") from None
    objs = [obj] if isinstance(obj, dict) else obj
    if not isinstance(objs, list):
        raise BadBody(422, "body must be an event object or a list of event objects")
    if not objs:
        raise BadBody(422, "empty batch: send at least one event")
    if len(objs) > max_events:
        raise BadBody(413, f"{len(objs)} events in one request; at most {max_events} (api.max_batch_events)")
    out = Checked()
    for index, one in enumerate(objs):
        raw = json.dumps(one, separators=(",", ":"), ensure_ascii=False).encode()
        result = validate_bytes(raw, max_event_bytes, now)
        if isinstance(result, Invalid):
            out.rejected.append({"index": index, "reason": result.reason})
        else:
            out.events.append(result)
    return out
