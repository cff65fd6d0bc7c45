"""Served lists as hard negatives: the items a user was shown just before an event, and did not
click, as extra negatives of that event's row in the online InfoNCE step.

A training example carries the feed its user held as a digest (``Example.shown``,
:mod:`streamrec.contracts.feed_digest`), 3 bytes per item: :class:`ShownRows` maps those digests
back to the trainer's item rows. Two items of the table with one digest (~N / 2^24 per item: 0.3%
of a 50k catalogue) are ambiguous and never resolved; a shown item the trainer has no row for
drops out (it can collide with a known one's digest, which then stands in as a negative: as rare,
and harmless, as a sampled negative).

Only the row that was shown the list gets its items (they are that user's skips, not the batch's),
and each counts ``weight`` times in its softmax denominator: its logit gets ``+ log(weight)``. Hard
negatives are picked by the served model, not drawn by popularity, so no logQ correction applies to
them. The feed's top items come first: the highest-ranked skips are the hardest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence, Set

import torch

from streamrec.contracts.feed_digest import item_digests, short_digest


class ShownRows:
    """Item digest -> row of the trainer's item table (ambiguous digests map to nothing)."""

    def __init__(self) -> None:
        self._rows: dict[bytes, int] = {}
        self._ambiguous: set[bytes] = set()
        self.known = 0  # rows digested so far: the table's first ``known`` items

    def extend(self, item_ids: Sequence[str]) -> None:
        """Digest the rows appended to ``item_ids`` (the whole table, in row order) since the last call."""
        for row in range(self.known, len(item_ids)):
            digest = short_digest(item_ids[row])
            if digest in self._ambiguous:
                continue
            if digest in self._rows:
                del self._rows[digest]
                self._ambiguous.add(digest)
            else:
                self._rows[digest] = row
        self.known = len(item_ids)

    def resolve(self, shown: str, skip: Set[int], n: int) -> list[int]:
        """Rows of the first ``n`` resolvable items of the feed digest ``shown`` that are not in ``skip``
        (the event's own item, the session's items), top of the feed first."""
        rows: list[int] = []
        for digest in item_digests(shown) if shown else ():
            row = self._rows.get(digest)
            if row is not None and row not in skip and row not in rows:
                rows.append(row)
                if len(rows) == n:
                    break
        return rows


def padded(picked: list[list[int]], weight: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's hard negatives (lists of item rows, any lengths) -> (rows [B, H] long, log weights
    [B, H]: ``log(weight)``, or -inf on padding, which then leaves the softmax), H = the longest list."""
    width = max(len(p) for p in picked)
    rows = torch.zeros(len(picked), width, dtype=torch.long)  # [B, H]
    log_w = torch.full((len(picked), width), -math.inf)  # [B, H]
    for b, p in enumerate(picked):
        rows[b, : len(p)] = torch.tensor(p, dtype=torch.long)
        log_w[b, : len(p)] = math.log(weight)
    return rows.to(device), log_w.to(device)
