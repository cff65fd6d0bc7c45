"""Settings of the hybrid scorer: model scores + beta x the session's co-occurrence bonus
(streamrec.cooccurrence) + session_weight x its session-kNN votes (streamrec.session_knn). Read
by eval, the streaming eval, export (the base table) and the worker (serving and the per-event
counts)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from streamrec.settings.base import Section


class HybridSettings(Section):
    """Defaults from docs/results/hybrid.md: beta and norm chosen on the validation item of ml-100k
    and diginetica; the bonus's shape (pairs weighted 1/k, popularity and source exponents 0.3)
    is the one that raised the co-occurrence signal on both data sets and on the streaming replay,
    and did not lower the hybrid anywhere."""

    beta: float = Field(0.5, ge=0.0, description="weight of the normalised co-occurrence bonus (0 = model only)")
    norm: Literal["max", "sum", "log", "raw"] = Field(
        "log", description="per-session scaling of the bonus: best neighbour = 1 (max), sum 1, log1p or raw counts"
    )
    popularity_exponent: float = Field(
        0.3,
        ge=0.0,
        le=2.0,
        description="a neighbour's count is divided by its total count to this power (0 = raw counts)",
    )
    source_exponent: float = Field(
        0.3,
        ge=0.0,
        le=2.0,
        description="a session item's counts are divided by its own total count to this power (0 = raw counts)",
    )
    distance_exponent: float = Field(
        1.0,
        ge=0.0,
        le=4.0,
        description="a pair k steps apart counts 1 / k to this power (0 = every pair in the window counts 1)",
    )
    repeat_weight: float = Field(
        10.0,
        ge=0.0,
        description="when the feed keeps seen items: weight of the session's recent items, times the share of "
        "events that re-click one (0 = off; no effect on data without repeats)",
    )
    max_neighbours: int = Field(
        64, ge=1, le=4096, description="neighbours kept per item (memory: 8 x this + 8 bytes per item)"
    )
    window: int = Field(5, ge=1, le=50, description="pairs at most this many steps apart count; last items scored")
    learn_online: bool = Field(True, description="the worker counts the pairs of every event it processes")
    session_weight: float = Field(
        0.5, ge=0.0, description="weight of the session-kNN votes, each session's best item = 1 (0 = off)"
    )
    session_neighbours: int = Field(100, ge=1, le=10_000, description="most similar sessions that vote, per session")
    sessions_per_item: int = Field(
        100, ge=1, le=10_000, description="latest sessions looked up per session item (memory: 8 B x this per item row)"
    )
    session_capacity: int = Field(
        200_000,
        ge=1,
        description="sessions the index keeps, the oldest overwritten first (memory: ~670 B each at 50 items a "
        "session, with its key; bench/session_votes.json)",
    )
    session_items: int = Field(50, ge=1, le=1000, description="last distinct items a session is represented by")

    def repeat(self, keep_seen: bool) -> float:
        """The repeat term's weight for a feed that keeps seen items or not: only a feed that keeps
        them gets it (with seen items excluded they cannot be shown, and offline the unmasked test
        item would be the only seen one left: a bonus there would point at the answer)."""
        return self.repeat_weight if keep_seen else 0.0

    def reference(self) -> HybridSettings:
        """The reference kNN's table shape: the same window and neighbours, raw counts (every pair
        in the window counts 1), whatever this hybrid's own bonus shape."""
        return self.model_copy(update={"distance_exponent": 0.0})
