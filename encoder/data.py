"""From an event log to what the models see: catalogue rows, per-user index sequences, and the
leave-one-out split shared by ``streamrec train`` and ``streamrec eval``.

Split per user, in time order: the last event is the test target, the one before it the
validation target, everything earlier is training. Train and eval derive the split from the
same file the same way, so a test event is never trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamrec.contracts.events import EVENT_TYPES
from streamrec.datasets import Catalogue, EventLog

TYPE_INDEX = {name: i + 1 for i, name in enumerate(EVENT_TYPES)}  # 0 = padding (docs/contracts.md)


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


def left_pad(rows: list[np.ndarray], length: int, fill: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Newest ``length`` values of each row, left-padded -> (values [B, L], mask [B, L] bool)."""
    out = np.full((len(rows), length), fill, dtype=np.int64)
    mask = np.zeros((len(rows), length), dtype=bool)
    for b, row in enumerate(rows):
        tail = row[-length:] if length else row[:0]
        if len(tail):
            out[b, length - len(tail) :] = tail
            mask[b, length - len(tail) :] = True
    return out, mask


def gaps_of(ts: np.ndarray) -> np.ndarray:
    """Seconds since the previous event (0 for the first)."""
    return np.diff(ts, prepend=ts[:1]) if len(ts) else ts


def left_pad_float(rows: list[np.ndarray], length: int) -> np.ndarray:
    out = np.zeros((len(rows), length), dtype=np.float32)
    for b, row in enumerate(rows):
        tail = row[-length:]
        if len(tail):
            out[b, length - len(tail) :] = tail
    return out
