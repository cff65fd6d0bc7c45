"""Live quality, measured by the worker: for every event, was its item in the top 10 / top K of
the feed the user held just before it, and at which rank?

This is the online hit rate a product team reads (did the list we showed contain what they
clicked next), computed where the events are, per model version and per experiment arm, instead
of by a replayer reading Redis. The arm label is the user's arm now (a hash of the user id,
:mod:`streamrec.experiment`; ``all`` without an experiment): a user changes arms only when the
experiment's arms or salt change, and their first event after it counts in the new arm against a
feed of the old one.

What is kept, and its cost. A feed is remembered as a digest (:mod:`streamrec.contracts.feed_digest`:
the version, then 3 bytes per item; training examples carry the same string as what was shown), so a
K=20 feed is 84 characters, and ``"f": "..."`` adds ~91 bytes to a session value in the
changelog (``bench/live_metrics_state.json``). A false hit needs another item's 24-bit digest
to collide with the clicked one's among K: ~K / 2^24 per event (1.2e-6 at K=20).

Where it is kept. A batch's feeds are computed after its sessions went to the table (steps 3
and 4 of :mod:`streamrec.streams.pipeline`), so the newest feed's digest waits in memory
(:class:`LiveMetrics`, at most ``worker.live_feeds_kept`` users, least recently fed dropped
first) until the user's next event folds it into the session, whose changelog record carries it.
After a restart, a rebalance, or for a user dropped from memory, the session's digest is one
feed older than the feed the user last held; an event of a user who never had a feed counts in
``streamrec_live_events_without_feed_total``. A redelivered (duplicate) event is not counted.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

from streamrec.contracts.feed import Feed
from streamrec.contracts.feed_digest import feed_digest, live_hit, rank_in, short_digest
from streamrec.experiment import Assignment
from streamrec.streams.metrics import WorkerMetrics

UNKNOWN_VERSION = "unknown"  # a digest of a version this process never served (older than its start)


class LiveMetrics:
    """Scores events against the last feed of their user and remembers the feeds just written.
    Event-loop only (``last_feed``/``score`` in prepare, ``remember`` after the feed write)."""

    def __init__(self, metrics: WorkerMetrics, kept: int, assignment: Assignment | None = None) -> None:
        self.metrics = metrics
        self.kept = kept
        self.assignment = assignment or Assignment((), "")  # user id -> experiment arm label and bucket
        self._newest: OrderedDict[str, str] = OrderedDict()  # user -> digest of the feed written last
        self._versions: dict[bytes, str] = {}

    def last_feed(self, user_id: str, stored: str) -> str:
        """The digest of the feed the user holds: the one written since their last event if this
        process remembers it, else the one their session carries (``stored``; may be empty)."""
        return self._newest.get(user_id, stored)

    def forget(self, user_id: str) -> None:
        """Drop the user's digest: their session, with the digest :meth:`last_feed` gave, went to
        the table (the changelog holds it now, memory need not), or the user was erased."""
        self._newest.pop(user_id, None)

    def score(self, digest: str, item_id: str, user_id: str) -> None:
        """Count one (non-duplicate) event of ``user_id`` against the feed they held before it."""
        m = self.metrics
        arm = self.assignment.label_of(user_id)
        if not digest:
            m.live_without_feed.labels(arm=arm).inc()
            return
        version_digest, rank = rank_in(digest, item_id)
        labels = {"version": self._versions.get(version_digest, UNKNOWN_VERSION), "arm": arm}
        bucket = {"arm": arm, "bucket": str(self.assignment.bucket(user_id))}
        m.live_events.labels(**labels).inc()
        m.live_bucket_events.labels(**bucket).inc()
        if rank is None:
            return
        m.live_hits_k.labels(**labels).inc()
        m.live_rr.labels(**labels).inc(1.0 / rank)
        if live_hit(rank):
            m.live_hits_10.labels(**labels).inc()
            m.live_bucket_hits_10.labels(**bucket).inc()

    def remember(
        self, feeds: Sequence[Feed], applied: Sequence[bool], erased: Callable[[str], bool] = lambda _user: False
    ) -> None:
        """The feeds just written to Redis (those refused as older are not what users hold, and
        those of users ``erased`` since were deleted)."""
        for feed, ok in zip(feeds, applied, strict=True):
            if not ok or erased(feed.user_id):
                continue
            self._versions.setdefault(short_digest(feed.model_version), feed.model_version)
            self._newest[feed.user_id] = feed_digest(feed.model_version, feed.items)
            self._newest.move_to_end(feed.user_id)
        while len(self._newest) > self.kept:
            self._newest.popitem(last=False)
