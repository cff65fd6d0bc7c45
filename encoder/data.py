"""From an event log to what the models see: catalogue rows, per-user index sequences, and the
leave-one-out split shared by ``streamrec train`` and ``streamrec eval``.

Split per user, in time order: the last event is the test target, the one before it the
validation target, everything earlier is training. Train and eval derive the split from the
same file the same way, so a test event is never trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamrec.contracts.session_rows import TYPE_INDEX
from streamrec.datasets import Catalogue, EventLog


@dataclass
class Sequences:
    """Each user's events as catalogue row indices, in time order."""

    users: list[str]
    items: list[np.ndarray]  # int64 [n_u] rows into the catalogue
    types: list[np.ndarray]  # int64 [n_u] TYPE_INDEX values
    ts: list[np.ndarray]  # float64 [n_u] epoch seconds

    def train_part(self, u: int) -> slice:
        """Events of user ``u`` that training may see (all but the last two, or the last one)."""
        n = len(self.items[u])
        return slice(0, n - 2 if n >= 3 else n - 1 if n == 2 else n)


def catalogue_rows(log: EventLog, catalogue: Catalogue | None, base: list[str] | None = None) -> list[str]:
    """Row order: ``base`` (a trained model's ids) first, then the items file, then event-only items."""
    rows = list(base or [])
    seen = set(rows)
    for source in (catalogue.item_ids if catalogue is not None else [], log.item_ids()):
        for item in source:
            if item not in seen:
                seen.add(item)
                rows.append(item)
    return rows


def build_sequences(log: EventLog, index: dict[str, int]) -> Sequences:
    users: dict[str, tuple[list[int], list[int], list[float]]] = {}
    for ev in log.events:
        its, tys, tss = users.setdefault(ev.user_id, ([], [], []))
        its.append(index[ev.item_id])
        tys.append(TYPE_INDEX[ev.type])
        tss.append(ev.ts)
    names = list(users)
    return Sequences(
        users=names,
        items=[np.asarray(users[u][0], np.int64) for u in names],
        types=[np.asarray(users[u][1], np.int64) for u in names],
        ts=[np.asarray(users[u][2], np.float64) for u in names],
    )


def gaps_of(ts: np.ndarray) -> np.ndarray:
    """Seconds since the previous event (0 for the first)."""
    return np.diff(ts, prepend=ts[:1]) if len(ts) else ts


def held_out_items(log: EventLog, share: float, seed: int) -> set[str]:
    """A seeded ``share`` of the log's distinct items, for a cold-start check: training drops
    their events, evaluation scores the users whose test item is one of them. Drawn from the
    sorted ids, so train and eval on the same file agree without sharing any state."""
    if share <= 0:
        return set()
    ids = sorted(set(log.item_ids()))
    n = round(share * len(ids))
    picked = np.random.default_rng(seed).choice(len(ids), size=n, replace=False)
    return {ids[i] for i in picked}
