"""A session's sparse score bonus, as the co-occurrence table computes it and the serving graph
scatter-adds it: the (session, item, value) entries, their per-session normalisation, and the
repeat term for feeds that keep seen items, and the weighted sum of several bonuses (the
hybrid adds its session-kNN votes to the co-occurrence bonus this way).

Repeats: session logs click the same items again (on the diginetica clicks 17.5% of the events
re-click one of the session's last 5 items; on ml-100k no rating repeats one). When a feed may
show seen items, the session's own recent items are candidates too: the repeat/explore split of
RepeatNet (Ren et al., AAAI 2019), with the repeat probability taken as the share of repeats
the table has counted. A recent item's bonus is ``weight x share x k / window`` (``k`` its
recency, newest = ``window``, as in the co-occurrence score), so on data without repeats the
share is 0 and the term vanishes: it needs no per-data-set switch. Numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Normalisation = Literal["max", "sum", "log", "raw"]


@dataclass(frozen=True)
class Bonus:
    """Sparse per-session scores: ``rows`` int64 [B, C] (table rows, padding -1) and ``values``
    float32 [B, C] (padding 0); each (session, row) at most once."""

    rows: np.ndarray
    values: np.ndarray


def normalise(sums: np.ndarray, session: np.ndarray, n_sessions: int, how: Normalisation) -> np.ndarray:
    """Per-session scaling of merged scores (``session`` = the session of each entry): ``max``
    maps each session's best neighbour to 1, ``sum`` makes them sum to 1, ``log`` is
    ``log1p``, ``raw`` the counts themselves."""
    if how == "raw" or not len(sums):
        return sums
    if how == "log":
        return np.log1p(sums)
    reduce = np.maximum if how == "max" else np.add
    per = np.zeros(n_sessions, np.float64)
    reduce.at(per, session, sums)
    return sums / np.where(per > 0, per, 1.0)[session]


def merge(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entries keyed ``session * n_rows + row``, a key possibly several times -> (the keys sorted,
    each once, and their summed values)."""
    uniq, inverse = np.unique(keys, return_inverse=True)
    return uniq, np.bincount(inverse, weights=values, minlength=len(uniq))


def repeat_entries(src: np.ndarray, valid: np.ndarray, amount: float, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The repeat term of sessions given as their last ``w`` rows ``src`` [B, w] (newest last,
    ``valid`` marks real ones) -> (keys ``session * n_rows + row``, values ``amount x k / w``); an
    item in the tail twice keeps its newest weight."""
    b, w = src.shape
    value = np.broadcast_to(np.arange(1, w + 1, dtype=np.float64) * (amount / w), (b, w))
    session = np.broadcast_to(np.arange(b)[:, None], (b, w))
    keys, inverse = np.unique(session[valid] * n_rows + src[valid], return_inverse=True)
    best = np.zeros(len(keys))
    np.maximum.at(best, inverse, value[valid])
    return keys, best


def layout(keys: np.ndarray, sums: np.ndarray, n_sessions: int, n_rows: int) -> Bonus:
    """Merged entries (keys ``session * n_rows + row``, sorted) -> the padded [B, C] bonus."""
    owner = keys // n_rows
    per = np.bincount(owner, minlength=n_sessions)  # [B] entries per session
    c = int(per.max()) if n_sessions and len(keys) else 0
    rows = np.full((n_sessions, c), -1, np.int64)
    values = np.zeros((n_sessions, c), np.float32)
    start = np.concatenate([[0], np.cumsum(per)[:-1]]) if n_sessions else np.zeros(0, np.int64)
    slot = np.arange(len(keys)) - start[owner]
    rows[owner, slot] = keys % n_rows
    values[owner, slot] = sums
    return Bonus(rows, values)


def weighted_sum(parts: list[tuple[Bonus, float]]) -> Bonus:
    """Bonuses of the same sessions in the same row space, each times its weight, added (a row in
    several is summed): the hybrid's co-occurrence and session-kNN halves as one sparse input."""
    if len(parts) == 1:
        bonus, weight = parts[0]
        return Bonus(bonus.rows, (bonus.values * np.float32(weight)).astype(np.float32))
    b = parts[0][0].rows.shape[0]
    n = max([int(p.rows.max()) + 1 for p, _ in parts if p.rows.size] + [1])
    keys, values = [], []
    for bonus, weight in parts:
        s, c = np.nonzero(bonus.rows >= 0)
        keys.append(s * n + bonus.rows[s, c])
        values.append(bonus.values[s, c].astype(np.float64) * weight)
    merged, sums = merge(np.concatenate(keys), np.concatenate(values))
    return layout(merged, sums, b, n)
