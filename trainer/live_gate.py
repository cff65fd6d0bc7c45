"""The live gate: a canary's live hit@10 against the stable version's, over the same window.

A version that passed the held-back gate is announced as a canary (a stable-hashed share of the
users, ``trainer.canary_share``; :mod:`streamrec.contracts.announcement`). The trainer already
reads, with every example, the feed its user held just before the event (``shown``: the digest of
the version that produced it and of its items, :mod:`streamrec.contracts.feed_digest`). So it can
tell, per example, which version served the feed and whether the clicked item was in its top 10,
without asking the workers: the counts below come from the training stream alone, so they cover
every worker, and the two versions are counted over the same window: events published after the
announcement (the example's ``published``, the event's Kafka timestamp; examples of older events
the trainer reads late are left out, as are feeds made by any other version).

The verdict: once the canary has ``canary_min_events`` such events, it is rolled back when it is
worse than the stable version by more than ``canary_tolerance`` with confidence
``canary_confidence`` (the one-sided upper bound of the difference of the two hit rates, normal
approximation, below minus the tolerance), else rolled out; 0.5 is the bare point estimate. A
point estimate alone rolls back an equally good canary too often: at hit@10 0.27 on 200 canary
events the difference's standard error is about 0.031, so a 0.02 tolerance refuses one in four.
One that has not gathered its events after ``canary_timeout_s`` is rolled back (a canary nobody is
served tells nothing).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

from streamrec.contracts.announcement import Canary, canary_of
from streamrec.contracts.feed_digest import live_hit, rank_in, short_digest
from streamrec.contracts.training_batch import Example
from streamrec.settings.encoder import TrainerSettings


@dataclass
class Tally:
    """Events with a feed from one version, and how many clicked an item of its top 10."""

    events: int = 0
    hits: int = 0

    @property
    def rate(self) -> float:
        return self.hits / self.events if self.events else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"events": self.events, "hits@10": self.hits, "hit@10": round(self.rate, 6)}


@dataclass(frozen=True)
class Verdict:
    rollout: bool
    reason: str
    live: dict[str, dict[str, float]]


@dataclass
class LiveGate:
    settings: TrainerSettings
    clock: Callable[[], float] = time.time  # wall clock: compared with the events' Kafka timestamps
    canary: Canary | None = None  # the version on trial, None between trials
    announcement: dict[str, Any] = field(default_factory=dict)  # the canary's, for everyone
    started: float = 0.0
    tallies: dict[bytes, Tally] = field(default_factory=dict)  # version digest -> its tally

    def start(self, announcement: dict[str, Any], canary: Canary) -> None:
        """Judge ``canary`` (announced for everyone as ``announcement`` if it passes) from now on."""
        self.canary, self.announcement, self.started = canary, announcement, self.clock()
        self.tallies = {short_digest(canary.version): Tally(), short_digest(canary.stable): Tally()}

    def resume(self, newest: dict[str, Any] | None, resumed_from: str) -> str:
        """At start: a canary of the version the trainer resumed from, still announced (a restart
        mid-trial), is judged afresh. Returns the served version: that canary's stable one, else
        ``resumed_from``."""
        canary = None if newest is None else canary_of(newest)
        if canary is None or canary.version != resumed_from:
            return resumed_from
        self.start({k: v for k, v in newest.items() if k != "canary"}, canary)
        return canary.stable

    def settle(self, announcement_of: Callable[[str], dict[str, Any]]) -> tuple[Canary, Verdict, dict[str, Any]] | None:
        """Once there is a verdict: the trial ends, with what to announce (the canary for everyone
        with its live counts, or the stable version's ``announcement_of`` with ``rolled_back``)."""
        verdict, canary = self.verdict(), self.canary
        if verdict is None or canary is None:
            return None
        if verdict.rollout:
            metrics = {**self.announcement.get("metrics", {}), "live": verdict.live}
            ann = {**self.announcement, "metrics": metrics}
        else:
            refused = {"version": canary.version, "reason": verdict.reason, "live": verdict.live}
            ann = {**announcement_of(canary.stable), "rolled_back": refused}
        self.canary, self.announcement, self.tallies = None, {}, {}
        return canary, verdict, ann

    def observe(self, examples: Iterable[Example]) -> None:
        """Count each example whose feed came from the canary or the stable version."""
        if self.canary is None:
            return
        for ex in examples:
            if not ex.shown or (ex.published is not None and ex.published < self.started):
                continue
            version, rank = rank_in(ex.shown, ex.next_item)
            tally = self.tallies.get(version)
            if tally is not None:
                tally.events += 1
                tally.hits += live_hit(rank)

    def live(self) -> dict[str, dict[str, float]]:
        """Both versions' counts so far (the canary's first), for logs, metrics and the lineage."""
        assert self.canary is not None
        c, s = (self.tallies[short_digest(v)] for v in (self.canary.version, self.canary.stable))
        return {
            "canary": {"version": self.canary.version, **c.as_dict()},
            "stable": {"version": self.canary.stable, **s.as_dict()},
        }

    def verdict(self) -> Verdict | None:
        """The decision once there is one, None while the canary is still gathering events."""
        if self.canary is None:
            return None
        s = self.settings
        canary, stable = (self.tallies[short_digest(v)] for v in (self.canary.version, self.canary.stable))
        if canary.events >= s.canary_min_events:
            upper = canary.rate - stable.rate + NormalDist().inv_cdf(s.canary_confidence) * _se(canary, stable)
            ok = upper >= -s.canary_tolerance
            reason = (
                f"live hit@10 {canary.rate:.4f} on {canary.events} events vs stable {stable.rate:.4f} on "
                f"{stable.events}: difference at most {upper:+.4f} ({s.canary_confidence:g} one-sided), "
                f"{'within' if ok else 'below'} the tolerance -{s.canary_tolerance:g}"
            )
            return Verdict(ok, reason, self.live())
        waited = self.clock() - self.started
        if waited > s.canary_timeout_s:
            reason = f"only {canary.events} canary events of {s.canary_min_events} after {waited:.0f} s"
            return Verdict(False, reason, self.live())
        return None


def _se(a: Tally, b: Tally) -> float:
    """Standard error of the difference of two hit rates (each binomial, independent users)."""
    return math.sqrt(sum(t.rate * (1 - t.rate) / t.events for t in (a, b) if t.events))
