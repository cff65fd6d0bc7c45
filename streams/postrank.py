"""After the serving graph, on the scoring thread: each candidate pool re-ranked to ``k`` by MMR
(when on), carrying each item's ``because`` (which the runner computed on the pool).

Numpy over the whole batch (:mod:`streamrec.rerank`): the pools become padded [B, P] arrays and
their vectors come from the runner's catalogue in one lookup per batch, so the cost grows with
the batch's array sizes, not with a Python loop over users (``bench/model_bench.py`` measures it
against the scoring of the same batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from streamrec.rerank import mmr
from streamrec.streams.model_slot import Runner


class Ranked(NamedTuple):
    """One session's list: item ids best first, their model scores, and per item the session
    item that explains it."""

    items: list[str]
    scores: list[float]
    because: list[str | None]  # None: no session item explains it (the popularity control's lists)


def diversify(runner: Runner, pools: Sequence[Ranked], k: int, lam: float) -> list[Ranked]:
    """MMR re-rank of each pool to ``k``; scores stay the model's, each item keeps its ``because``."""
    if not pools:
        return []
    lengths = np.fromiter((len(p.items) for p in pools), np.int64, count=len(pools))
    width = int(lengths.max())
    batch = np.repeat(np.arange(len(pools)), lengths)  # [n]
    pos = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # [n] within its pool
    vectors = np.zeros((len(pools), width, runner.d), np.float32)
    vectors[batch, pos] = runner.item_vectors([i for p in pools for i in p.items])  # pool items are catalogue items
    scores = np.full((len(pools), width), -np.inf)
    scores[batch, pos] = [s for p in pools for s in p.scores]
    picks = mmr(scores, vectors, k, lam)  # [B, k]
    return [
        Ranked(*([column[j] for j in row if j >= 0] for column in pool))
        for pool, row in zip(pools, picks.tolist(), strict=True)
    ]
