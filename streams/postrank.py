"""After the serving graph, on the scoring thread: each candidate pool re-ranked to ``k`` by MMR
(when on), then each feed item's ``because`` (the session item most like it).

Both are numpy over the whole batch (:mod:`streamrec.rerank`, :mod:`streamrec.explain`): the
lists become padded [B, P] / [B, L] arrays and the vectors come from the runner's catalogue in
one lookup per batch, so the cost grows with the batch's array sizes, not with a Python loop
over users (``bench/model_bench.py`` measures it against the scoring of the same batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from streamrec.explain import because
from streamrec.rerank import mmr
from streamrec.streams.model_slot import Runner


class Ranked(NamedTuple):
    """One session's feed: item ids best first, their model scores, and per item the session
    item that explains it (None only if no session item has a vector)."""

    items: list[str]
    scores: list[float]
    because: list[str | None]


def _padded(runner: Runner, lists: Sequence[Sequence[str]], left: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of ``lists`` as float32 [B, longest, d] and a mask [B, longest] (False: padding or
    an id the catalogue lacks), one catalogue lookup for all; ``left`` pads on the left."""
    lengths = np.fromiter((len(x) for x in lists), np.int64, count=len(lists))
    width = int(lengths.max(initial=0))
    flat = [i for x in lists for i in x]
    batch = np.repeat(np.arange(len(lists)), lengths)  # [n]
    starts = np.cumsum(lengths) - lengths  # [B]
    pos = np.arange(len(flat)) - np.repeat(starts, lengths)  # [n] position within its list
    if left:
        pos += np.repeat(width - lengths, lengths)
    known = runner.rows_of(flat) >= 0  # [n]
    vectors = np.zeros((len(lists), width, runner.d), np.float32)
    mask = np.zeros((len(lists), width), bool)
    vectors[batch[known], pos[known]] = runner.item_vectors([i for i, ok in zip(flat, known, strict=True) if ok])
    mask[batch[known], pos[known]] = True
    return vectors, mask


def diversify(runner: Runner, pools: Sequence[tuple[list[str], list[float]]], k: int, lam: float) -> list:
    """MMR re-rank of each (ids, scores) pool to ``k`` -> (ids, scores) lists, scores the model's."""
    if not pools:
        return []
    vectors, mask = _padded(runner, [ids for ids, _ in pools])
    scores = np.full(mask.shape, -np.inf)
    for b, (_, s) in enumerate(pools):
        scores[b, : len(s)] = s
    picks = mmr(np.where(mask, scores, -np.inf), vectors, k, lam)  # [B, k]
    return [
        ([ids[j] for j in row if j >= 0], [s[j] for j in row if j >= 0])
        for (ids, s), row in zip(pools, picks.tolist(), strict=True)
    ]


def explain(
    runner: Runner, sessions: Sequence[Sequence[str]], feeds: Sequence[Sequence[str]]
) -> list[list[str | None]]:
    """Per feed item, the item of the session's newest ``runner.session_length`` (the ones the
    model read) with the highest cosine to it; None where no session item has a vector."""
    if not sessions:
        return []
    tails = [list(s[-runner.session_length :]) for s in sessions]
    session_vectors, session_mask = _padded(runner, tails, left=True)
    feed_vectors, _ = _padded(runner, feeds)
    pos = because(session_vectors, session_mask, feed_vectors)  # [B, K]
    width = session_mask.shape[1]
    return [
        [tail[p - width + len(tail)] if p >= 0 else None for p in row[: len(feed)]]
        for tail, feed, row in zip(tails, feeds, pos.tolist(), strict=True)
    ]
