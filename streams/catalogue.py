"""Catalogue updates (``streamrec.items``) -> the runner's item matrix.

Message: key = item id, value JSON ``{"item_id", "title", "text", "category", "available"
(default true), "vector" (optional, list of d floats)}``; a tombstone (null value) withdraws
the item. A new or changed item reaches the matrix as soon as its vector is known: given in the
message, or computed from its text by the artifact's text projection (cold_start), so a new
item can be recommended from the next micro-batch on (~20 ms after it is read).

The overlay keeps every update seen since the worker started and is replayed onto each newly
loaded runner before it is swapped in: an artifact exported before an item was published
must not make that item disappear on a model swap.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamrec.datasets import item_text
from streamrec.streams.model_slot import Runner

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ItemUpdate:
    item_id: str
    available: bool
    text: str | None = None
    vector: list[float] | None = None


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
    return ItemUpdate(obj["item_id"], bool(obj.get("available", True)), text, vector)


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


class CatalogueOverlay:
    def __init__(self) -> None:
        self.items: dict[str, ItemUpdate] = {}

    def record(self, updates: Sequence[ItemUpdate]) -> None:
        for u in updates:
            prev = self.items.get(u.item_id)
            if u.vector is None and prev is not None and prev.vector is not None and u.text == prev.text:
                u.vector = prev.vector  # availability flip: keep the known vector
            self.items[u.item_id] = u

    def apply(self, runner: Runner, updates: Sequence[ItemUpdate]) -> int:
        """Push ``updates`` into ``runner``; returns how many items got a vector. Items without
        a vector (none given, no text projection) only change availability."""
        with_vec = [u for u in updates if u.vector is not None]
        if with_vec:
            runner.upsert_items([u.item_id for u in with_vec], np.asarray([u.vector for u in with_vec], np.float32))
        for flag in (True, False):
            ids = [u.item_id for u in updates if u.available is flag]
            if ids:
                runner.set_available(ids, flag)
        return len(with_vec)

    def replay_onto(self, runner: Runner) -> None:
        """Bring a freshly loaded runner up to date with every update seen so far."""
        if self.items:
            self.apply(runner, list(self.items.values()))
