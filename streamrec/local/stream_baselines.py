"""The streaming eval's same-run baselines (co-occurrence kNN, session kNN, popularity), fed the
replay's chunks as the served pipeline is, so every method is scored on the same events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from streamrec.bonus import Bonus
from streamrec.contracts.events import Event
from streamrec.contracts.feed import Feed
from streamrec.cooccurrence import Cooccurrence

K = 10  # the feed length every method is scored at (hit@10)


@dataclass
class Baselines:
    """Same-run streaming baselines, fed the same chunks. The kNN is the reference one: its own
    table of raw counts (whatever shape the hybrid's bonus has), counted on the same events. The
    session kNN is the votes of that table's session index alone (every session stored as it
    grows, as the worker stores them)."""

    table: Cooccurrence
    popularity: Counter[str] = field(default_factory=Counter)  # seeded with the older part
    knn: dict[str, Feed] = field(default_factory=dict)
    sknn: dict[str, Feed] = field(default_factory=dict)
    top: dict[str, Feed] = field(default_factory=dict)
    history: dict[str, list[str]] = field(default_factory=dict)  # every user's items, for the table

    def update(self, sessions: dict[str, list[str]], events: Sequence[Event]) -> None:
        self.popularity.update(ev.item_id for ev in events)
        ranked = [i for i, _ in self.popularity.most_common(K + max((len(s) for s in sessions.values()), default=0))]
        table = self.table
        counted = []
        for ev in events:  # in arrival order, as the worker counts them
            prefix = self.history.setdefault(ev.user_id, [])
            counted.append((prefix[-table.window :], ev.item_id))
            prefix.append(ev.item_id)
        table.observe_items(counted)
        users = list(sessions)
        bonus = table.bonus([sessions[u] for u in users], "raw")
        votes = None
        if table.sessions is not None:
            votes = table.sessions.store_and_vote(users, [sessions[u] for u in users], table.rows)
        for n, u in enumerate(users):
            seen = set(sessions[u])
            self.top[u] = Feed(u, [i for i in ranked if i not in seen][:K], [], "popularity", 0.0, "", 0, 0)
            self.knn[u] = Feed(u, self._best(bonus, n, seen), [], "cooccurrence", 0.0, "", 0, 0)
            if votes is not None:
                self.sknn[u] = Feed(u, self._best(votes, n, seen), [], "session_knn", 0.0, "", 0, 0)

    def _best(self, bonus: Bonus, n: int, seen: set[str]) -> list[str]:
        """Session ``n``'s top-K items of a bonus, best first, ties by table row, seen ones left out."""
        keep = bonus.rows[n] >= 0
        rows, vals = bonus.rows[n][keep], bonus.values[n][keep]
        order = np.lexsort((rows, -vals))
        return [self.table.ids[r] for r in rows[order].tolist() if self.table.ids[r] not in seen][:K]
