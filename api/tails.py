"""What the console shows of three topics, each followed from offset 0 in a thread like every
worker follows them (:mod:`streamrec.follow`): the served model (latest announcement), the
catalogue (for item search) and the newest dead letters. Records are folded in when a request
asks, so an idle API does no work beyond the followers' fetches."""

from __future__ import annotations

import collections
import json
import threading
from collections.abc import Callable
from typing import Any

from streamrec.contracts.announcement import parse_announcement
from streamrec.contracts.items import parse_item

DEAD_LETTERS_KEPT = 200


class Tail:
    """A follower of one topic and the state ``fold`` builds from its records."""

    def __init__(self, bootstrap: str, topic: str, fold: Callable[[Any], None], **client_kwargs: Any) -> None:
        from streamrec.follow import FollowerThread

        self._follower = FollowerThread(bootstrap, topic, **client_kwargs)
        self._fold = fold
        self._lock = threading.Lock()

    def refresh(self) -> bool:
        """Fold in what arrived; True once everything the topic held at start was read."""
        with self._lock:
            for record in self._follower.drain():
                self._fold(record)
            return self._follower.follower.caught_up.is_set()

    def close(self) -> None:
        self._follower.close()


class Tails:
    """The three topics' state: served announcement, catalogue, newest dead letters."""

    def __init__(self, bootstrap: str, models: str, items: str, dlq: str, **client_kwargs: Any) -> None:
        self.served: dict[str, Any] | None = None
        self.catalogue: dict[str, dict[str, Any]] = {}
        self.dead_letters: collections.deque[dict[str, Any]] = collections.deque(maxlen=DEAD_LETTERS_KEPT)
        self.models = Tail(bootstrap, models, self._on_model, **client_kwargs)
        self.items = Tail(bootstrap, items, self._on_item, **client_kwargs)
        self.dlq = Tail(bootstrap, dlq, self._on_dead_letter, **client_kwargs)

    def _on_model(self, record: Any) -> None:
        self.served = parse_announcement(record.value) or self.served

    def _on_item(self, record: Any) -> None:
        update = parse_item(record.key, record.value)
        if isinstance(update, str):
            return
        if record.value is None:  # a tombstone: the item is gone from the catalogue
            self.catalogue.pop(update.item_id, None)
            return
        obj = json.loads(record.value)
        self.catalogue[update.item_id] = {
            "item_id": update.item_id,
            "title": obj.get("title"),
            "category": obj.get("category"),
            "available": update.available,
        }

    def _on_dead_letter(self, record: Any) -> None:
        try:
            body = json.loads(record.value)
        except (TypeError, ValueError):
            body = {"reason": "unreadable dead letter", "value": None}
        self.dead_letters.append(
            {
                "offset": record.offset,
                "timestamp_ms": record.timestamp,
                "reason": body.get("reason"),
                "source": body.get("source"),
                "key": body.get("key"),
                "value": body.get("value"),
            }
        )

    def search(self, query: str, limit: int) -> list[dict[str, Any]]:
        """Catalogue items whose id or title contains ``query`` (case-insensitive)."""
        self.items.refresh()
        q = query.lower()
        hits = (
            row for row in self.catalogue.values() if q in row["item_id"].lower() or q in (row["title"] or "").lower()
        )
        return [row for row, _ in zip(hits, range(limit), strict=False)]

    def latest_dead_letters(self, limit: int) -> list[dict[str, Any]]:
        self.dlq.refresh()
        return list(self.dead_letters)[-limit:][::-1]

    def close(self) -> None:
        for tail in (self.models, self.items, self.dlq):
            tail.close()
