"""The hybrid scorer's neighbourhood half in the worker: the live co-occurrence table, its
per-event counts, the live session index (each scored user's session, stored as it is scored)
and each batch's bonus in the serving runner's catalogue rows.

The table starts from the one the first served artifact ships (counted on its training log) and
then counts the pairs of every event this worker processes, so it adapts to new items at once.
A model swap keeps it: the live table already holds the base counts and every event since (the
online trainer's versions ship the same base table). The session index starts from the one the
table ships (older tables have none: it starts empty) and holds every session this worker
scores: a worker sees its partitions' users, the base index everybody's up to the model's log.

An item the table knows but the runner's catalogue lacks (first seen in an event, no vector
yet) gets a zero vector in the catalogue: its model score is 0 and its bonus can rank it. The
catalogue of a new runner lacks them again; they are added back on its first batch.

Everything here runs on the worker's one scoring thread (the table is not thread-safe).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from streamrec.bonus import Bonus, weighted_sum
from streamrec.cooccurrence import Cooccurrence
from streamrec.serving.runner import SparseBonus
from streamrec.session_knn import SessionIndex
from streamrec.settings.hybrid import HybridSettings

log = logging.getLogger(__name__)


class BonusRunner(Protocol):
    """What the hybrid needs of a runner (streamrec.serving.runner.Runner)."""

    @property
    def takes_bonus(self) -> bool: ...

    @property
    def d(self) -> int: ...

    @property
    def item_ids(self) -> list[str]: ...

    def rows_of(self, ids: Sequence[str]) -> np.ndarray: ...

    def upsert_items(self, ids: Sequence[str], vectors: np.ndarray) -> int: ...


class LiveHybrid:
    """See the module docstring. ``beta`` 0 turns the co-occurrence bonus off (the table still
    counts), ``session_weight`` 0 the session votes (the index is not updated then)."""

    def __init__(self, settings: HybridSettings, table: Cooccurrence | None = None) -> None:
        self.settings = settings
        self.table = self._with_sessions(table) if table is not None else None
        self._runner: object | None = None  # the runner the mapping below belongs to
        self._to_catalogue = np.zeros(0, np.int64)  # [T] table row -> catalogue row (-1 = none yet)

    def adopt(self, base: Cooccurrence | None) -> None:
        """Start from ``base`` (a served artifact's table) unless a live table exists already."""
        if self.table is None:
            s = self.settings
            self.table = self._with_sessions(
                base
                if base is not None
                else Cooccurrence(s.max_neighbours, s.window, distance_exponent=s.distance_exponent)
            )
            assert self.table.sessions is not None
            log.info(
                "co-occurrence table: %d items, session index: %d sessions to start from",
                len(self.table),
                len(self.table.sessions),
            )

    def _with_sessions(self, table: Cooccurrence) -> Cooccurrence:
        """``table`` with a session index (an empty one where it shipped none: older files)."""
        if table.sessions is None:
            table.sessions = SessionIndex.shaped(self.settings)
        return table

    def observe(self, events: Sequence[tuple[Sequence[str], str]]) -> None:
        """Count the pairs of (session before the event, event's item) in arrival order."""
        if self.table is None or not self.settings.learn_online or not events:
            return
        self.table.observe_items(events)

    def bonus(
        self,
        runner: BonusRunner,
        sessions: Sequence[Sequence[str]],
        keep_seen: bool = False,
        users: Sequence[str] | None = None,
    ) -> SparseBonus | None:
        """The batch's bonus (already weighted) in ``runner``'s catalogue rows, or None when off;
        with ``keep_seen`` it includes the repeat term (a feed that excludes seen items drops them).
        ``users`` (the sessions' owners) turns on the session votes: each session is stored in the
        index first, then scored against everybody else's."""
        s = self.settings
        votes = s.session_weight > 0 and users is not None
        if self.table is None or (s.beta <= 0 and not votes) or not runner.takes_bonus or not sessions:
            return None
        raw = weighted_sum(self._parts(sessions, keep_seen, users if votes else None))
        to_cat = self._mapping(runner)
        rows = np.where(raw.rows >= 0, to_cat[np.maximum(raw.rows, 0)], -1)  # [B, C]
        values = np.where(rows >= 0, raw.values, 0).astype(np.float32)
        return rows, values

    def _parts(
        self, sessions: Sequence[Sequence[str]], keep_seen: bool, users: Sequence[str] | None
    ) -> list[tuple[Bonus, float]]:
        """(bonus, weight) of the co-occurrence half (when beta > 0) and of the session votes (when
        ``users`` is given), in table rows."""
        table, s = self.table, self.settings
        assert table is not None
        parts = []
        if s.beta > 0:
            bonus = table.bonus(sessions, s.norm, s.popularity_exponent, s.source_exponent, s.repeat(keep_seen))
            parts.append((bonus, s.beta))
        if users is not None:
            assert table.sessions is not None  # every table here has one (_with_sessions)
            parts.append((table.sessions.store_and_vote(users, sessions, table.rows), s.session_weight))
        return parts

    def _mapping(self, runner: BonusRunner) -> np.ndarray:
        """Table row -> catalogue row, extended for rows added since; table items the catalogue
        lacks are upserted with zero vectors first (recommendable by their bonus)."""
        assert self.table is not None
        if runner is not self._runner:
            self._runner, self._to_catalogue = runner, np.zeros(0, np.int64)
        known = len(self._to_catalogue)
        fresh = self.table.ids[known:]
        if fresh:
            rows = runner.rows_of(fresh)
            missing = [i for i, r in zip(fresh, rows.tolist(), strict=True) if r < 0]
            if missing:
                runner.upsert_items(missing, np.zeros((len(missing), runner.d), np.float32))
                rows = runner.rows_of(fresh)
            self._to_catalogue = np.concatenate([self._to_catalogue, rows])
        return self._to_catalogue
