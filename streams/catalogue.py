"""Catalogue updates (``streamrec.items``, format: :mod:`streamrec.contracts.items`) -> the
runner's item matrix. A new or changed item reaches the matrix as soon as its vector is known:
given in the message, or computed from its text by the artifact's text projection
(cold_start), so a new item can be recommended from the next micro-batch on (~20 ms after it
is read).

The overlay keeps every update seen since the worker started and is replayed onto each newly
loaded runner before it is swapped in: an artifact exported before an item was published
must not make that item disappear on a model swap.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from streamrec.contracts.items import ItemUpdate
from streamrec.streams.model_slot import Runner

log = logging.getLogger(__name__)


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
