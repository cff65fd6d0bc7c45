"""The wire contracts as JSON Schemas (2020-12) for producers in other languages and for the
API's spec: the event (what :func:`streamrec.contracts.events.validate_obj` accepts), the feed
as apps read it, and the catalogue record on ``streamrec.items``. Written to docs/schemas/ by
``python -m streamrec.contracts.schemas docs/schemas``; a test keeps them current and another
checks that the event schema and the validator agree on generated events.

What a schema cannot say is in the descriptions: an event's size limit (``max_event_bytes``)
and that ``ts`` may be at most a day in the future.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from streamrec.contracts.events import EVENT_TYPES, MAX_FUTURE_SKEW_S, MAX_ID_CHARS

DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE = "https://streamrec.dev/schemas/"
# ts as text: epoch seconds in decimal, or ISO-8601 with a timezone (Z or +hh:mm).
NUMERIC_TS = r"^\s*[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"
ISO_TS = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})$"


def _id(what: str) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ID_CHARS,
        "pattern": r"\S",  # not only whitespace
        "description": what,
    }


EVENT: dict[str, Any] = {
    "$schema": DIALECT,
    "$id": BASE + "event.schema.json",
    "title": "streamrec event",
    "description": "One interaction, published on streamrec.events with key = user_id. Also refused: an event "
    "whose compact JSON is over max_event_bytes (64 KiB by default) and a ts more than "
    f"{MAX_FUTURE_SKEW_S / 3600:.0f} h in the future.",
    "type": "object",
    "required": ["event_id", "user_id", "item_id", "ts"],
    "additionalProperties": False,
    "properties": {
        "event_id": _id("unique per event: a redelivered event with the same id is applied once"),
        "user_id": _id("the user (also the Kafka key)"),
        "item_id": _id("the item interacted with"),
        "type": {"enum": list(EVENT_TYPES), "default": "click", "description": "kind of interaction"},
        "ts": {
            "description": "when it happened: epoch seconds (number or decimal string) or ISO-8601 with a timezone",
            "oneOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": NUMERIC_TS},
                {"type": "string", "pattern": ISO_TS},
            ],
        },
    },
}

FEED: dict[str, Any] = {
    "$schema": DIALECT,
    "$id": BASE + "feed.schema.json",
    "title": "streamrec feed",
    "description": "A user's top-K: the packed value of the 'feed' field of the Redis hash <feed_prefix><user> "
    "(user id percent-encoded in the key).",
    "type": "object",
    "required": ["user_id", "items", "scores", "model_version", "generated_at", "event_id", "partition", "offset"],
    "additionalProperties": False,
    "properties": {
        "user_id": {"type": "string"},
        "items": {"type": "array", "items": {"type": "string"}, "description": "item ids, best first"},
        "scores": {"type": "array", "items": {"type": "number"}, "description": "one score per item"},
        "model_version": {"type": "string"},
        "generated_at": {"type": "number", "description": "epoch seconds when the worker computed it"},
        "event_id": {"type": "string", "description": "the event that caused it"},
        "partition": {"type": "integer", "minimum": 0, "description": "events partition of that event"},
        "offset": {"type": "integer", "minimum": 0, "description": "its offset (a lower one never overwrites)"},
        "because": {
            "type": "array",
            "items": {"type": ["string", "null"]},
            "description": "one per item: the item of the user's session most like it (highest cosine of the "
            "model's item vectors among the newest session_length), null where no session item has a vector; "
            "absent in feeds written before it existed",
        },
        "arm": {
            "type": "string",
            "description": "the experiment arm of the user (experiment.arms); model_version is then the version "
            "the arm's policy served, 'popularity' for a popularity control; empty without an experiment, absent "
            "in feeds written before it existed",
        },
    },
}

ITEM: dict[str, Any] = {
    "$schema": DIALECT,
    "$id": BASE + "item.schema.json",
    "title": "streamrec catalogue item",
    "description": "A record on streamrec.items (compacted), key = item_id; a tombstone (null value) withdraws "
    "the item. title, category and text make the text the item's text model reads.",
    "type": "object",
    "required": ["item_id"],
    "properties": {
        "item_id": {"type": "string", "minLength": 1},
        "title": {"type": ["string", "null"]},
        "text": {"type": ["string", "null"]},
        "category": {"type": ["string", "null"]},
        "available": {"type": "boolean", "default": True, "description": "false = never recommended"},
        "vector": {
            "type": ["array", "null"],
            "items": {"type": "number"},
            "description": "optional item vector of the served model's width d",
        },
    },
}

SCHEMAS = {"event.schema.json": EVENT, "feed.schema.json": FEED, "item.schema.json": ITEM}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2) + "\n"


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas")
    out.mkdir(parents=True, exist_ok=True)
    for name, schema in SCHEMAS.items():
        (out / name).write_text(render(schema))
