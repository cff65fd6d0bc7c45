"""Catalogue updates (``streamrec.items``, format: :mod:`streamrec.contracts.items`) -> the
runner's item matrix. A new or changed item reaches the matrix as soon as its vector is known:
given in the message, or computed from its text by the artifact's text tower (``text.onnx``,
see ``WorkerRuntime``), so a new item can be recommended from the next micro-batch on.

Which updates may set a vector is :func:`streamrec.item_refresh.refreshes_vector`, the rule the
online trainer applies too: a trained row keeps its trained vector unless the update is marked
``content_change`` (from then on the item counts as untrained in this worker, as in the trainer).

The overlay keeps every update seen since the worker started and is replayed onto each newly
loaded runner before it is swapped in: an artifact exported before an item was published must
not make that item disappear on a model swap. A vector embedded from text belongs to the text
tower that made it: a runner with another ``text.onnx`` gets it re-embedded (:meth:`stale`)
instead of a vector from a different item space.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamrec.contracts.items import ItemUpdate
from streamrec.item_refresh import refreshes_vector
from streamrec.streams.model_slot import Runner

log = logging.getLogger(__name__)
MESSAGE = "message"  # Entry.source of a vector given in the catalogue message


@dataclass(slots=True)
class Entry:
    """The newest update of one item and the vector the worker holds for it."""

    update: ItemUpdate
    vector: np.ndarray | None = None  # float32 [d]
    source: str | None = None  # MESSAGE, or the sha256 of the text.onnx that embedded update.text


class CatalogueOverlay:
    def __init__(self) -> None:
        self.items: dict[str, Entry] = {}

    def _sticky(self, updates: Sequence[ItemUpdate]) -> None:
        """An item whose content changed stays "changed" for later updates of it."""
        for u in updates:
            prev = self.items.get(u.item_id)
            if prev is not None and prev.update.content_change:
                u.content_change = True

    def to_embed(self, runner: Runner, updates: Sequence[ItemUpdate]) -> list[ItemUpdate]:
        """The updates whose vector ``runner``'s text tower must compute: available items with
        text and no vector in the message, which the rule lets refresh, and whose text this
        worker has not embedded with that tower already."""
        self._sticky(updates)
        if runner.text_digest is None:
            return []
        out = []
        for u, trained in zip(updates, runner.trained([u.item_id for u in updates]), strict=True):
            if u.vector is not None or not u.text or not u.available or not refreshes_vector(u, trained):
                continue
            prev = self.items.get(u.item_id)
            held = prev is not None and prev.vector is not None and prev.update.text == u.text
            if not (held and prev is not None and prev.source == runner.text_digest):
                out.append(u)
        return out

    def record(self, updates: Sequence[ItemUpdate], embedded: dict[str, np.ndarray], tower: str | None) -> None:
        """Keep ``updates`` with their vectors: from the message, from ``embedded`` (made by the
        text tower ``tower``), or, for an unchanged text (an availability flip), the one held."""
        self._sticky(updates)
        for u in updates:
            prev = self.items.get(u.item_id)
            entry = Entry(u)
            if u.vector is not None:
                entry.vector, entry.source = np.asarray(u.vector, np.float32), MESSAGE
            elif u.item_id in embedded:
                entry.vector, entry.source = embedded[u.item_id], tower
            elif prev is not None and prev.vector is not None and prev.update.text == u.text:
                entry.vector, entry.source = prev.vector, prev.source
            self.items[u.item_id] = entry

    def apply(self, runner: Runner, updates: Sequence[ItemUpdate]) -> int:
        """Push ``updates`` into ``runner``; returns how many items got a vector. Items without an
        applicable vector (none, a trained row the rule protects, another tower's) only change
        availability."""
        ids = list(dict.fromkeys(u.item_id for u in updates))
        entries = [self.items[i] for i in ids]
        with_vec = [
            e
            for e, trained in zip(entries, runner.trained(ids), strict=True)
            if e.vector is not None
            and e.source in (MESSAGE, runner.text_digest)
            and refreshes_vector(e.update, trained)
        ]
        if with_vec:
            runner.upsert_items([e.update.item_id for e in with_vec], np.stack([e.vector for e in with_vec]))
        for flag in (True, False):
            flagged = [e.update.item_id for e in entries if e.update.available is flag]
            if flagged:
                runner.set_available(flagged, flag)
        return len(with_vec)

    def stale(self, runner: Runner) -> list[ItemUpdate]:
        """Updates to embed with ``runner``'s text tower before :meth:`replay_onto`: text-only
        vectors another tower made, and texts never embedded (read before any model was
        loaded). Empty when ``runner`` has no tower: those items then wait for a vector (logged)."""
        other = [e.update for e in self.items.values() if e.source not in (MESSAGE, runner.text_digest)]
        if runner.text_digest is None:
            lost = sum(1 for e in self.items.values() if e.source not in (None, MESSAGE))
            if lost:
                log.warning("model %s has no text tower: %d text-only items lose their vector", runner.version, lost)
            return []
        return self.to_embed(runner, other)

    def replay_onto(self, runner: Runner, embedded: dict[str, np.ndarray] | None = None) -> None:
        """Bring a freshly loaded runner up to date with every update seen so far (``embedded``:
        the re-embedded :meth:`stale` items)."""
        for item, vec in (embedded or {}).items():
            self.items[item].vector, self.items[item].source = vec, runner.text_digest
        if self.items:
            self.apply(runner, [e.update for e in self.items.values()])
