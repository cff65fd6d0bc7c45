"""Item co-occurrence counts, bounded per item and updated per event: the neighbourhood signal
that offline eval, the streaming eval and the worker all use (one implementation).

Counts: when item ``x`` follows a session whose last ``window`` items are ``p1..pw``, every pair
``(p, x)`` and ``(x, p)`` gains 1 (pairs at most ``window`` steps apart, both directions,
repeats counted), or ``1 / k ** distance_exponent`` for a pair ``k`` steps apart (a click right
after another says more about it than one four clicks later). A session is scored by
``sum_i w_i C[p_i, j]`` over its last ``window`` items, weighted ``1..window`` by recency (newest
``window``): with raw counts this reproduces the published co-occurrence kNN figure on ml-100k
(data README), which checks the protocol.

Memory is bounded: each item keeps at most ``max_neighbours`` (M) neighbours, as parallel
arrays ``neighbours int32 [N, M]`` and ``counts float32 [N, M]`` plus ``float32`` row totals:
``8 M + 4`` bytes per item (M = 64: 516 bytes, 43k items = 22 MB) and the item id. When a row is
full, a new neighbour replaces the one with the smallest count and inherits that count plus
its own (Space-Saving, Metwally et al. 2005): a neighbour seen often enough always stays, and
the error of any kept count is at most the smallest count of the row.

The table also counts how many events re-click one of the ``window`` items before them: the
repeat share that streamrec.bonus turns into a bonus for seen items, when a feed keeps them.

It can carry the hybrid's session index (streamrec.session_knn), which lives in the same rows
and is saved in the same file: the two are the base neighbourhood a model ships.

The table has its own rows (item ids in first-seen order): an item first seen in an event gets
a row at once, so it is a neighbour of its co-clicked items from the next event on, before any
model has a vector for it. Numpy only (the worker never imports torch).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from streamrec.bonus import Bonus, Normalisation, layout, merge, normalise, repeat_entries
from streamrec.session_knn import SessionIndex

FILE_NAME = "cooccurrence.npz"
SESSIONS = "sessions_"  # prefix of the session index's arrays in the file


class Cooccurrence:
    """See the module docstring. Not thread-safe: the worker updates and reads it on its scoring
    thread only."""

    def __init__(
        self, max_neighbours: int = 64, window: int = 5, capacity: int = 1024, distance_exponent: float = 0.0
    ) -> None:
        if max_neighbours < 1 or window < 1:
            raise ValueError("max_neighbours and window must be >= 1")
        if distance_exponent < 0:
            raise ValueError("distance_exponent must be >= 0")
        self.max_neighbours, self.window = max_neighbours, window
        self.distance_exponent = distance_exponent
        self.ids: list[str] = []
        self.rows: dict[str, int] = {}
        cap = max(capacity, 1)
        self.neighbours = np.full((cap, max_neighbours), -1, np.int32)  # [cap, M]
        self.counts = np.zeros((cap, max_neighbours), np.float32)  # [cap, M]
        self.fill = np.zeros(cap, np.int32)  # [cap] used slots per row
        self.totals = np.zeros(cap, np.float32)  # [cap] all pair counts ever added to a row
        self.repeats = self.events = 0  # events counted, and those whose item is in its prefix's window
        self.sessions: SessionIndex | None = None  # the session kNN's sessions, in these rows

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def bytes_per_item(self) -> int:
        return self.neighbours.itemsize * self.max_neighbours + self.counts.itemsize * self.max_neighbours + 8

    # ------------------------------------------------------------------ rows
    def row(self, item_id: str) -> int:
        """The row of ``item_id``, added (empty) when new."""
        r = self.rows.get(item_id)
        if r is None:
            r = self.rows[item_id] = len(self.ids)
            self.ids.append(item_id)
            if r >= len(self.fill):
                self._grow(2 * len(self.fill))
        return r

    def _grow(self, cap: int) -> None:
        extra = cap - len(self.fill)
        m = self.max_neighbours
        self.neighbours = np.concatenate([self.neighbours, np.full((extra, m), -1, np.int32)])
        self.counts = np.concatenate([self.counts, np.zeros((extra, m), np.float32)])
        self.fill = np.concatenate([self.fill, np.zeros(extra, np.int32)])
        self.totals = np.concatenate([self.totals, np.zeros(extra, np.float32)])

    # --------------------------------------------------------------- updates
    def observe(self, prefix: Sequence[str], item_id: str) -> None:
        """``item_id`` followed the session ``prefix`` (oldest first): count its pairs with the
        last ``window`` items of the prefix."""
        x = self.row(item_id)
        self.observe_rows(np.fromiter((self.row(i) for i in prefix[-self.window :]), np.int64), x)

    def observe_rows(self, prefix_rows: np.ndarray, x: int) -> None:
        """:meth:`observe` on table rows (``prefix_rows``: the last ``window`` of the prefix)."""
        self.observe_many([(prefix_rows, x)])

    def observe_items(self, events: Sequence[tuple[Sequence[str], str]]) -> None:
        """:meth:`observe_many` of (session before the event, event's item) given as item ids, in
        arrival order (new items get rows as they come: prefix first, then the item)."""
        self.observe_many([(self.rows_of(prefix[-self.window :]), self.row(item)) for prefix, item in events])

    def observe_many(self, events: Sequence[tuple[Sequence[int], int]]) -> None:
        """Several (prefix rows, new row) events at once, in one vectorised update (the worker
        applies a micro-batch this way: ~2 us an event instead of ~100 one by one)."""
        src, dst, steps = [], [], []
        for prefix, x in events:
            tail = list(prefix[-self.window :])
            self.repeats += x in tail
            src += tail
            dst += [x] * len(tail)
            steps += range(len(tail), 0, -1)  # steps from each tail item to x
        self.events += len(events)
        if not src:
            return
        s, d = np.asarray(src, np.int64), np.asarray(dst, np.int64)
        w = self.pair_weight(np.asarray(steps, np.float64)).astype(np.float32)
        self._add(np.concatenate([s, d]), np.concatenate([d, s]), np.concatenate([w, w]))

    def pair_weight(self, steps: np.ndarray) -> np.ndarray:
        """What a pair ``steps`` apart adds to its counts (1 when ``distance_exponent`` is 0)."""
        return steps**-self.distance_exponent if self.distance_exponent else np.ones_like(steps)

    def _add(self, rows: np.ndarray, cols: np.ndarray, amounts: np.ndarray) -> None:
        """``C[rows, cols] += amounts`` (pairs may repeat), new neighbours appended while a row has
        room, else replacing its smallest counts (Space-Saving)."""
        n = np.int64(max(len(self.ids), 1))
        keys, inverse = np.unique(rows * n + cols, return_inverse=True)  # sorted by row
        amt = np.bincount(inverse, weights=amounts).astype(np.float32)
        r, c = keys // n, keys % n
        np.add.at(self.totals, r, amt)
        if self.fill[r].any():
            eq = self.neighbours[r] == c[:, None]  # [U, M]
            found = eq.any(axis=1)
            self.counts[r[found], eq[found].argmax(axis=1)] += amt[found]
        else:  # only empty rows (a table built in one pass): nothing to match
            found = np.zeros(len(r), bool)
        r, c, amt = r[~found], c[~found], amt[~found]
        slot = self.fill[r] + (np.arange(len(r)) - np.searchsorted(r, r))  # next free slots per row
        fits = slot < self.max_neighbours
        self.neighbours[r[fits], slot[fits]] = c[fits]
        self.counts[r[fits], slot[fits]] = amt[fits]
        np.maximum.at(self.fill, r[fits], slot[fits].astype(np.int32) + 1)
        r, c, amt = r[~fits], c[~fits], amt[~fits]
        for row in np.unique(r).tolist():  # full rows: the smallest counts make way
            sel = r == row
            new, add = c[sel], amt[sel]
            cnt = self.counts[row]
            k = min(len(new), self.max_neighbours)
            slots = np.argpartition(cnt, k - 1)[:k]
            self.neighbours[row, slots] = new[:k]
            cnt[slots] += add[:k]

    def rows_of(self, items: Iterable[str]) -> np.ndarray:
        """Table rows of ``items`` (new ones added) -> int64 [n]."""
        return np.fromiter((self.row(i) for i in items), np.int64)

    def observe_sequences(self, sequences: Iterable[np.ndarray]) -> None:
        """Count every pair of each sequence (table rows of a history, oldest first) in one pass:
        exact counts (a sparse sum), then the ``max_neighbours`` largest per row merged into the
        table. The same table as replaying the sequences event by event when no row overflows;
        on rows that do, the exact top M instead of Space-Saving's approximation."""
        src, dst, wts = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
        for h in sequences:
            repeat = np.zeros(len(h), bool)  # [len h]: the item is one of the window before it
            for k in range(1, self.window + 1):
                if len(h) > k:
                    src += [h[:-k], h[k:]]
                    dst += [h[k:], h[:-k]]
                    wts.append(np.full(2 * (len(h) - k), self.pair_weight(np.float64(k))))
                    repeat[k:] |= h[k:] == h[:-k]
            self.events += len(h)
            self.repeats += int(repeat.sum())
        s, d = np.concatenate(src), np.concatenate(dst)
        n = max(len(self.ids), 1)
        keys, inverse = np.unique(s * n + d, return_inverse=True)  # sorted by source row
        times = np.bincount(inverse, weights=np.concatenate(wts), minlength=len(keys))
        owner, col = keys // n, keys % n
        order = np.lexsort((-times, owner))  # per source row, largest count first
        owner, col, times = owner[order], col[order], times[order]
        first = np.searchsorted(owner, owner)  # index of each source row's first entry
        rank = np.arange(len(owner)) - first
        top = rank < self.max_neighbours
        self._add(owner[top], col[top], times[top].astype(np.float32))
        np.add.at(self.totals, owner[~top], times[~top].astype(np.float32))

    # --------------------------------------------------------------- scoring
    def bonus(
        self,
        sessions: Sequence[Sequence[str]],
        how: Normalisation = "max",
        alpha: float = 0.0,
        source: float = 0.0,
        repeat: float = 0.0,
    ) -> Bonus:
        """Neighbour scores of each session (items oldest first; unknown items ignored). With
        ``alpha`` > 0 a neighbour's count is divided by its row total ** alpha (how often it
        co-occurs with anything: its popularity), so popular items do not win on volume alone;
        with ``source`` > 0 each session item's counts are divided by its own total ** source, so
        a popular item in the session does not drown out the rarer, more telling ones (both at
        0.3 make the kNN a partly cosine-normalised one). ``repeat`` > 0 adds the session's own
        recent items (streamrec.bonus): only for a feed that keeps seen items."""
        rows = [[self.rows[i] for i in s[-self.window :] if i in self.rows] for s in sessions]
        return self.bonus_rows(rows, how, alpha, source, repeat)

    @property
    def repeat_share(self) -> float:
        """Share of the counted events whose item is one of the ``window`` before it."""
        return self.repeats / self.events if self.events else 0.0

    def bonus_rows(
        self,
        sessions: Sequence[Sequence[int]],
        how: Normalisation = "max",
        alpha: float = 0.0,
        source: float = 0.0,
        repeat: float = 0.0,
    ) -> Bonus:
        """:meth:`bonus` of sessions given as table rows (only their last ``window`` are used)."""
        b, w = len(sessions), self.window
        src = np.full((b, w), -1, np.int64)  # [B, w], newest last
        for n, s in enumerate(sessions):
            tail = list(s[-w:])
            if tail:
                src[n, w - len(tail) :] = tail
        weights = np.arange(1, w + 1, dtype=np.float64)[None, :].repeat(b, 0)  # [B, w]: newest = w
        valid = src >= 0
        nb = self.neighbours[np.where(valid, src, 0)]  # [B, w, M]
        if source:
            weights = weights / np.maximum(self.totals[np.where(valid, src, 0)], 1.0) ** source
        vals = self.counts[np.where(valid, src, 0)] * (weights * valid)[:, :, None]  # [B, w, M]
        if alpha:
            vals = vals / np.maximum(self.totals[np.maximum(nb, 0)], 1.0) ** alpha
        keep = (nb >= 0) & (vals > 0)
        sess = np.broadcast_to(np.arange(b)[:, None, None], nb.shape)[keep]  # [E]
        n = max(len(self.ids), 1)
        keys, sums = merge(sess * n + nb[keep], vals[keep])  # sorted by session
        sums = normalise(sums, keys // n, b, how)
        if repeat and self.repeat_share:
            rkeys, rvals = repeat_entries(src, valid, repeat * self.repeat_share, n)
            keys, sums = merge(np.concatenate([keys, rkeys]), np.concatenate([sums, rvals]))
        return layout(keys, sums, b, n)

    def dense(self, bonus: Bonus, row_of: np.ndarray, n_items: int) -> np.ndarray:
        """``bonus`` as float32 [B, n_items] in another row space: ``row_of[table row]`` = that
        space's row, or -1 for an item it lacks (dropped)."""
        out = np.zeros((bonus.rows.shape[0], n_items), np.float32)
        target = np.where(bonus.rows >= 0, row_of[np.maximum(bonus.rows, 0)], -1)  # [B, C]
        b, c = np.nonzero(target >= 0)
        out[b, target[b, c]] = bonus.values[b, c]
        return out

    # ------------------------------------------------------------ persistence
    def save(self, path: Path) -> None:
        """One ``.npz`` (no pickled objects): ids, neighbours, counts, fill, totals, settings."""
        n = len(self.ids)
        with Path(path).open("wb") as fh:
            np.savez(
                fh,
                ids=np.frombuffer(json.dumps(self.ids).encode(), np.uint8),
                neighbours=self.neighbours[:n],
                counts=self.counts[:n],
                fill=self.fill[:n],
                totals=self.totals[:n],
                settings=np.array([self.max_neighbours, self.window], np.int64),
                distance_exponent=np.float64(self.distance_exponent),
                repeat_stats=np.array([self.repeats, self.events], np.int64),
                **(self.sessions.arrays(SESSIONS) if self.sessions is not None else {}),
            )

    @classmethod
    def load(cls, path: Path) -> Cooccurrence:
        with np.load(Path(path), allow_pickle=False) as z:
            m, w = (int(v) for v in z["settings"])
            distance = float(z["distance_exponent"]) if "distance_exponent" in z.files else 0.0  # older files: 0
            ids = json.loads(z["ids"].tobytes().decode())
            table = cls(m, w, capacity=max(2 * len(ids), 1024), distance_exponent=distance)
            n = len(ids)
            table.ids, table.rows = ids, {item: r for r, item in enumerate(ids)}
            table.neighbours[:n], table.counts[:n] = z["neighbours"], z["counts"]
            table.fill[:n], table.totals[:n] = z["fill"], z["totals"]
            if "repeat_stats" in z.files:  # older files: no repeats counted (share 0, no repeat term)
                table.repeats, table.events = (int(v) for v in z["repeat_stats"])
            if f"{SESSIONS}settings" in z.files:  # older files: no sessions (the worker starts an empty index)
                table.sessions = SessionIndex.from_arrays(z, SESSIONS)
        return table
