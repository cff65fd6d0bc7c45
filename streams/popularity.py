"""The popularity control of an experiment: every user of the arm gets the items clicked most
often, less those in their session (with ``exclude_seen``) and withdrawn ones.

The counts are this worker's: every event it applied since it started, from the users of every
arm (one table, so the control sees the same traffic as the model arms). A worker holds only its
partitions' events, so with P workers each counts about 1/P of the traffic; at the traffic of a
feed that matters (thousands of events) the top items are the same. Event-loop only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from streamrec.streams.postrank import Ranked

VERSION = "popularity"  # the feeds' model_version and the live metrics' version label


class Popularity:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.unavailable: set[str] = set()

    def observe(self, items: Iterable[str]) -> None:
        """Count one click (any event type) per item."""
        self.counts.update(items)

    def set_available(self, flags: Mapping[str, bool]) -> None:
        """Catalogue updates: withdrawn (or unavailable) items are never recommended."""
        for item, available in flags.items():
            if available:
                self.unavailable.discard(item)
            else:
                self.unavailable.add(item)

    def rank(self, sessions: Sequence[Sequence[str]], k: int, exclude_seen: bool) -> list[Ranked]:
        """Per session, up to ``k`` most clicked items best first, scored by their counts."""
        longest = max((len(s) for s in sessions), default=0) if exclude_seen else 0
        # enough candidates for the session that excludes the most of them (one O(n) pass per batch)
        top = [
            (item, n)
            for item, n in self.counts.most_common(k + longest + len(self.unavailable))
            if item not in self.unavailable
        ]
        out = []
        for session in sessions:
            seen = set(session) if exclude_seen else set()
            picked = [(item, n) for item, n in top if item not in seen][:k]
            out.append(Ranked([i for i, _ in picked], [float(n) for _, n in picked], [None] * len(picked)))
        return out
