"""Session kNN: the items of the sessions most like this one, the hybrid's second neighbourhood
signal next to item co-occurrence (one implementation for offline eval, the streaming eval and
the worker).

The method is V-SKNN (Ludewig & Jannach, "Evaluation of session-based recommendation
algorithms", UMUAI 2018), which on their e-commerce click benchmarks (diginetica among them)
matches or beats the neural session models it was compared with. A session ``s`` is its last
``session_items`` distinct items, the ``i``-th of ``n`` (oldest first) weighted ``i / n``; its
similarity to a stored session ``t`` is ``sum of the weights of the items they share /
sqrt(|t|)``; among the most recent ``per_item`` sessions of each of its items, the
``neighbours`` most similar vote for their items with their similarity. Item co-occurrence
sees pairs a few clicks apart; this sees the whole session at once, so the two add up (measured
in docs/results/hybrid.md).

Memory is bounded: a ring of ``capacity`` sessions (``int32 [S, L]`` items, the oldest session
overwritten first) and per item row a ring of its ``per_item`` latest session serials
(``int64 [R, m]``). A serial names one session for good: a slot reused by a newer session
invalidates the older serials in the item rings, so no lookup reaches a session that is gone.
Items are table rows (the co-occurrence table's row space, or catalogue rows offline): the
caller maps ids. Numpy only (the worker never imports torch). Not thread-safe: the worker uses it
on its scoring thread only.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from streamrec.bonus import Bonus, Normalisation, layout, merge, normalise

if TYPE_CHECKING:
    from streamrec.settings.hybrid import HybridSettings


def distinct_tail(rows: Sequence[int], limit: int) -> np.ndarray:
    """The last ``limit`` distinct rows of a session, oldest first, each at its latest position
    (negative rows dropped)."""
    seen: set[int] = set()
    out: list[int] = []
    for r in reversed(list(rows)):
        if r >= 0 and r not in seen:
            seen.add(r)
            out.append(r)
            if len(out) == limit:
                break
    return np.asarray(out[::-1], np.int64)


class SessionIndex:
    """See the module docstring."""

    def __init__(
        self, capacity: int = 200_000, session_items: int = 50, per_item: int = 100, neighbours: int = 100
    ) -> None:
        if min(capacity, session_items, per_item, neighbours) < 1:
            raise ValueError("capacity, session_items, per_item and neighbours must be >= 1")
        self.capacity, self.session_items = capacity, session_items
        self.per_item, self.neighbours = per_item, neighbours
        self.items = np.full((capacity, session_items), -1, np.int32)  # [S, L] rows, oldest first
        self.length = np.zeros(capacity, np.int32)  # [S]
        self.serial_of = np.full(capacity, -1, np.int64)  # [S] the serial now in each slot
        self.key_of: list[Hashable | None] = [None] * capacity  # [S] whose session each slot holds
        self.serial: dict[Hashable, int] = {}  # session key -> its serial
        self.next_serial = 0
        self.ring = np.full((1024, per_item), -1, np.int64)  # [R, m] latest serials per item row
        self.ring_next = np.zeros(1024, np.int64)  # [R] writes so far per row

    @classmethod
    def shaped(cls, hybrid: HybridSettings) -> SessionIndex:
        """An empty index of the hybrid settings' shape."""
        return cls(hybrid.session_capacity, hybrid.session_items, hybrid.sessions_per_item, hybrid.session_neighbours)

    def __len__(self) -> int:
        """Sessions held (loaded ones included: they have no key)."""
        return int((self.serial_of >= 0).sum())

    @property
    def n_rows(self) -> int:
        return len(self.ring_next)

    def _fit_rows(self, top: int) -> None:
        if top >= self.n_rows:
            extra = max(top + 1, 2 * self.n_rows) - self.n_rows
            self.ring = np.concatenate([self.ring, np.full((extra, self.per_item), -1, np.int64)])
            self.ring_next = np.concatenate([self.ring_next, np.zeros(extra, np.int64)])

    def _slot_of(self, key: Hashable) -> tuple[int, bool]:
        """(slot, new): ``key``'s live slot, or a fresh one (the oldest session gives way)."""
        serial = self.serial.get(key)
        if serial is not None and self.serial_of[serial % self.capacity] == serial:
            return serial % self.capacity, False
        serial, self.next_serial = self.next_serial, self.next_serial + 1
        slot = serial % self.capacity
        old = self.key_of[slot]
        if old is not None and self.serial.get(old) == self.serial_of[slot]:
            del self.serial[old]
        self.serial[key], self.key_of[slot], self.serial_of[slot] = serial, key, serial
        self.length[slot] = 0
        return slot, True

    def put(self, key: Hashable, rows: Sequence[int]) -> None:
        """Store ``key``'s session (its rows, oldest first) as it is now, replacing the older
        copy; its items not in that copy get the session's serial in their rings."""
        self._store(key, distinct_tail(rows, self.session_items))

    def _store(self, key: Hashable, tail: np.ndarray) -> None:
        slot, _ = self._slot_of(key)
        old = set(self.items[slot, : self.length[slot]].tolist())  # <= 50 rows: a set beats np.isin's setup
        fresh = np.asarray([r for r in tail.tolist() if r not in old], np.int64)
        self.items[slot] = -1
        self.items[slot, : len(tail)] = tail
        self.length[slot] = len(tail)
        if len(fresh):
            self._fit_rows(int(fresh.max()))
            serial = self.serial_of[slot]
            self.ring[fresh, self.ring_next[fresh] % self.per_item] = serial
            self.ring_next[fresh] += 1

    def put_many(self, keys: Sequence[Hashable], sessions: Sequence[Sequence[int]]) -> None:
        """:meth:`put` of several sessions in order (the later of two with the same key wins)."""
        for key, rows in zip(keys, sessions, strict=True):
            self.put(key, rows)

    def forget(self, keys: Sequence[Hashable]) -> None:
        """Drop these keys' sessions (a user's erasure): the slot is emptied and its serial
        retired, so no item ring reaches it again and it is neither stored nor saved any more."""
        for key in keys:
            serial = self.serial.pop(key, None)
            if serial is None or self.serial_of[serial % self.capacity] != serial:
                continue
            slot = serial % self.capacity
            self.items[slot], self.length[slot], self.serial_of[slot], self.key_of[slot] = -1, 0, -1, None

    # --------------------------------------------------------------- scoring
    def bonus_rows(
        self,
        sessions: Sequence[Sequence[int]],
        keys: Sequence[Hashable | None] | None = None,
        how: Normalisation = "max",
    ) -> Bonus:
        """The neighbour sessions' votes per session (rows oldest first) -> a Bonus in row space,
        normalised per session by ``how``. ``keys[i]``: session ``i``'s own key, never its own
        neighbour (None: not stored)."""
        return self._votes([distinct_tail(r, self.session_items) for r in sessions], keys, how)

    def store_and_vote(
        self, keys: Sequence[Hashable], sessions: Sequence[Sequence[str]], row_of: Mapping[str, int]
    ) -> Bonus:
        """Each session (item ids, oldest first; ids ``row_of`` lacks are dropped) stored under
        its key, then all of them scored (:meth:`bonus_rows`, "max"): the worker's step per batch
        and the streaming eval's baseline, so a user's latest session is in the index before
        anyone is scored against it. Each session's tail is taken once for both."""
        tails = [distinct_tail([row_of[i] for i in s if i in row_of], self.session_items) for s in sessions]
        for key, tail in zip(keys, tails, strict=True):
            self._store(key, tail)
        return self._votes(tails, keys, "max")

    def _votes(self, tails: list[np.ndarray], keys: Sequence[Hashable | None] | None, how: Normalisation) -> Bonus:
        b, s = len(tails), self.capacity
        qb = np.concatenate([np.full(len(t), i, np.int64) for i, t in enumerate(tails)] + [np.zeros(0, np.int64)])
        qr = np.concatenate([*tails, np.zeros(0, np.int64)])
        qw = np.concatenate(
            [np.arange(1, len(t) + 1, dtype=np.float64) / max(len(t), 1) for t in tails] + [np.zeros(0)]
        )
        known = qr < self.n_rows
        qb, qr, qw = qb[known], qr[known], qw[known]
        own = np.array([self.serial.get(k, -2) if k is not None else -2 for k in (keys or [None] * b)], np.int64)
        cand = self.ring[qr]  # [Q, m] serials
        slot = np.maximum(cand, 0) % s
        valid = (cand >= 0) & (self.serial_of[slot] == cand) & (cand != own[qb][:, None])
        qi = np.broadcast_to(np.arange(len(qb))[:, None], cand.shape)[valid]
        pairs, sims = merge(qb[qi] * s + slot[valid], qw[qi])  # (session, neighbour slot) -> shared weight
        owner, nslot = pairs // s, pairs % s
        sims = sims / np.sqrt(np.maximum(self.length[nslot], 1))
        order = np.lexsort((-sims, owner))  # per session, most similar first
        owner, nslot, sims = owner[order], nslot[order], sims[order]
        top = (np.arange(len(owner)) - np.searchsorted(owner, owner)) < self.neighbours
        owner, nslot, sims = owner[top], nslot[top], sims[top]
        votes = self.items[nslot]  # [E, L]
        has = votes >= 0
        n = self.n_rows
        keys_, sums = merge(
            np.broadcast_to(owner[:, None], votes.shape)[has] * n + votes[has],
            np.broadcast_to(sims[:, None], votes.shape)[has],
        )
        return layout(keys_, normalise(sums, keys_ // n, b, how), b, n)

    # ------------------------------------------------------------ persistence
    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The live sessions, oldest first, as named arrays (for the co-occurrence table's file,
        whose rows they use); keys are not kept: loaded sessions are neighbours to others and
        nobody's own."""
        live = np.flatnonzero(self.serial_of >= 0)
        live = live[np.argsort(self.serial_of[live])]
        return {
            f"{prefix}items": self.items[live][self.items[live] >= 0],  # flat: each session's rows in turn
            f"{prefix}length": self.length[live],
            f"{prefix}settings": np.array(
                [self.capacity, self.session_items, self.per_item, self.neighbours], np.int64
            ),
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> SessionIndex:
        capacity, items, per_item, neighbours = (int(v) for v in arrays[f"{prefix}settings"])
        index = cls(capacity, items, per_item, neighbours)
        lengths = arrays[f"{prefix}length"]
        for rows in np.split(arrays[f"{prefix}items"], np.cumsum(lengths)[:-1]) if len(lengths) else []:
            index.put(_ANONYMOUS, rows.tolist())
            index.serial.pop(_ANONYMOUS)  # the next put takes a fresh slot
        index.key_of = [None] * capacity
        return index


_ANONYMOUS = object()  # the key a loaded session is stored under for the moment of its put
