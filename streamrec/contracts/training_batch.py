"""Training batches, worker -> trainer on ``streamrec.training`` (docs/contracts.md).

Format v1, JSON: ``{"v": 1, "model_version": str, "examples": [{"user_id", "items", "types",
"next_item", "next_type", "ts", "event_id", "published", "shown"}]}``. ``items``/``types`` are the
session prefix before the event (oldest first), ``next_item``/``next_type`` the event itself, ``ts``
its time as the producer wrote it. Two fields were added compatibly within v1 (optional: a reader
that ignores them, or a batch without them, still works):

- ``published``: the Kafka timestamp of the event's record on the events topic, epoch seconds: the
  trainer drops an erased user's examples published before the erasure
  (streamrec.contracts.erasure);
- ``shown``: the feed the user held just before the event, as its digest
  (:mod:`streamrec.contracts.feed_digest`: 4 characters per item, at most :data:`SHOWN_ITEMS`, top
  first), "" when the worker knew of none: the online trainer's hard negatives. A digest, not the
  ids, because it is what the worker already keeps per user (the session's ``f``): carrying ids
  would add a feed's ids to every session value in the changelog, and a JSON list of ids costs
  (id length + 3) bytes per item against a digest's 4; the trainer maps digests back to its item
  rows and drops the ambiguous ones.

JSON without spaces keeps a 256-example batch of 50-item prefixes around 150 KB (plus 52 KB of
``shown`` at most), under Kafka's default 1 MB message limit; the version field lets the trainer
refuse (not misread) a future format.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Final

from streamrec.contracts import compact_json
from streamrec.contracts.feed_digest import CHARS, head, items_in

VERSION: Final = 1
SHOWN_ITEMS: Final = 50  # of the feed recorded per example: 204 characters, ~52 KB per 256 examples


class TrainingBatchError(ValueError):
    """A message on the training topic that is not a batch this code can read."""


@dataclass(frozen=True, slots=True)
class Example:
    """One (session prefix -> next item) example."""

    user_id: str
    items: list[str]
    types: list[str]
    next_item: str
    next_type: str
    ts: float
    event_id: str
    published: float | None = None  # the source event's Kafka timestamp; None from older workers
    shown: str = ""  # digest of the feed held before the event, top SHOWN_ITEMS; "" from older workers


def shown_digest(feed: str) -> str:
    """What an example records of the feed digest ``feed``: its top :data:`SHOWN_ITEMS` items."""
    return head(feed, SHOWN_ITEMS)


@dataclass(frozen=True, slots=True)
class TrainingBatch:
    model_version: str
    examples: list[Example]


def encode_batch(model_version: str, examples: list[Example]) -> bytes:
    """Serialize a batch (format v1)."""
    return compact_json.dumps({"v": VERSION, "model_version": model_version, "examples": examples})


def _example(obj: Any) -> Example:
    if not isinstance(obj, dict):
        raise TrainingBatchError(f"example must be an object, got {type(obj).__name__}")
    try:
        ex = Example(
            user_id=str(obj["user_id"]),
            items=[str(i) for i in obj["items"]],
            types=[str(t) for t in obj["types"]],
            next_item=str(obj["next_item"]),
            next_type=str(obj["next_type"]),
            ts=float(obj["ts"]),
            event_id=str(obj["event_id"]),
            published=None if obj.get("published") is None else float(obj["published"]),
            shown=_shown(obj.get("shown")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TrainingBatchError(f"bad example: {exc!r}") from None
    if len(ex.items) != len(ex.types):
        raise TrainingBatchError(f"example {ex.event_id}: {len(ex.items)} items but {len(ex.types)} types")
    return ex


def _shown(value: Any) -> str:
    """A valid ``shown`` digest, "" when absent; ValueError for anything else."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"shown must be a string, got {type(value).__name__}")
    if len(value) % CHARS or items_in(value) > SHOWN_ITEMS:
        raise ValueError(f"shown must be a feed digest of at most {SHOWN_ITEMS} items, got {len(value)} characters")
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError("shown is not base64") from None
    return value


def decode_batch(raw: bytes) -> TrainingBatch:
    """Parse a batch; raises :class:`TrainingBatchError` for anything but a valid v1 batch."""
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise TrainingBatchError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise TrainingBatchError("batch must be a JSON object")
    if obj.get("v") != VERSION:
        raise TrainingBatchError(f"unsupported training batch version {obj.get('v')!r} (this code reads {VERSION})")
    examples = obj.get("examples")
    if not isinstance(examples, list):
        raise TrainingBatchError("examples must be a list")
    return TrainingBatch(str(obj.get("model_version", "")), [_example(e) for e in examples])
