"""The catalogue record on ``streamrec.items``, and the one text an item's text model reads.

Message: key = item id, value JSON ``{"item_id", "title", "text", "category", "available"
(default true), "vector" (optional, list of d floats), "content_change" (default false: the
item's content changed, so its vector is recomputed even where a trained one exists)}``; a
tombstone (null value) withdraws the item.
:func:`item_text` is shared by training (catalogue files), the worker's cold start
and the online trainer, so a new item is embedded from the same kind of text the model learned
from.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


def item_text(title: str | None, category: str | None, text: str | None) -> str:
    """The one string an item's text model input is made of. Shared by training (files) and the
    catalogue topic (worker cold start, online trainer), so a new item is embedded from the same
    kind of text the model learned from."""
    parts = [title, category, text]
    return ". ".join(p.strip() for p in parts if p and p.strip())


@dataclass(slots=True)
class ItemUpdate:
    item_id: str
    available: bool
    text: str | None = None
    vector: list[float] | None = None
    content_change: bool = False


def parse_item(key: bytes | None, value: bytes | None) -> ItemUpdate | str:
    """An update, or the reason the message is unusable (logged, never fatal)."""
    obj = None
    if value is not None:
        try:
            obj = json.loads(value)
        except ValueError as exc:
            return f"malformed JSON: {exc}"
    if obj is None:  # a tombstone (or JSON null, what a JSON-serializing producer makes of None)
        if not key:
            return "tombstone without a key"
        return ItemUpdate(key.decode("utf-8", "replace"), available=False)
    if not isinstance(obj, dict) or not isinstance(obj.get("item_id"), str) or not obj["item_id"]:
        return "item must be an object with a non-empty string item_id"
    vector = obj.get("vector")
    if vector is not None and (not isinstance(vector, list) or not all(isinstance(x, int | float) for x in vector)):
        return "vector must be a list of numbers"
    fields = (str(obj[f]) if obj.get(f) else None for f in ("title", "category", "text"))
    text = item_text(*fields) or None  # the training text format: the text model sees the same input
    return ItemUpdate(obj["item_id"], bool(obj.get("available", True)), text, vector, obj.get("content_change") is True)


RECORD_FIELDS = ("item_id", "title", "text", "category", "available", "vector", "content_change")
_TRUE, _FALSE = {"1", "true", "yes", "y", "t"}, {"0", "false", "no", "n", "f"}


def _flag(value: Any, name: str) -> bool | str:
    """A boolean from JSON (true) or a text file ("true", "1", "no"); a str is the reason."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    return f"{name} must be true or false, got {str(value)[:40]!r}"


def record_from_row(row: dict[str, Any]) -> dict[str, Any] | str:
    """The catalogue record of one file row (CSV cells are text: ``available``/``content_change``
    as true/false, ``vector`` as a JSON list), checked by :func:`parse_item`; a str is the reason
    it is refused. Columns other than :data:`RECORD_FIELDS` are not published."""
    record: dict[str, Any] = {}
    for name in RECORD_FIELDS:
        value = row.get(name)
        if value is None or value == "":
            continue
        if name in ("available", "content_change"):
            value = _flag(value, name)
            if isinstance(value, str):
                return value
        elif name == "vector" and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return "vector must be a JSON list of numbers"
        elif name != "vector":
            value = str(value).strip()
        record[name] = value
    item_id = record.get("item_id")
    checked = parse_item(item_id.encode() if isinstance(item_id, str) else None, json.dumps(record).encode())
    return checked if isinstance(checked, str) else record


def parse_records(records: Iterable[Any]) -> list[ItemUpdate]:
    """The usable updates among consumer records (aiokafka's or kafka-python's: ``key``,
    ``value``, ``offset``); an unusable one is logged with its reason and skipped."""
    updates: list[ItemUpdate] = []
    for r in records:
        u = parse_item(r.key, r.value)
        if isinstance(u, str):
            log.warning("ignoring item message at offset %d: %s", r.offset, u)
        else:
            updates.append(u)
    return updates
