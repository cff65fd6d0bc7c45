"""Scoring one batch's sessions on the scoring thread: few runner calls of sessions of similar
length (:func:`length_groups`; the runner explains each item: ``because``), one by one when a
call fails, then the MMR re-rank of each pool (:mod:`streamrec.streams.postrank`).

One scoring thread: onnxruntime releases the GIL, so the event loop keeps heart-beating and
buffering the next batch while this one is encoded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from streamrec.cooccurrence import Cooccurrence
from streamrec.serving.hybrid import LiveHybrid
from streamrec.serving.runner import Explained, SparseBonus
from streamrec.streams.metrics import WorkerMetrics
from streamrec.streams.model_slot import Runner
from streamrec.streams.postrank import Ranked, diversify

if TYPE_CHECKING:
    from streamrec.streams.pipeline import PipelineConfig

log = logging.getLogger(__name__)

# Cost model of one runner call, in "session positions encoded" (one position of one session
# through the 2-layer d=128 tower ~ 0.84 MFLOP): scoring a session against 50k items (6.4 MFLOP
# GEMM + top-K) ~ 10 positions; a call's fixed cost ~ 64 plus one per 100 catalogue items, for
# the pass over the whole item matrix that every call's scoring GEMM makes. Measured with 218
# sessions of geometric lengths (mean 18) per batch, 2 cores: at 50k items a fixed 64 split a
# batch into 8 calls, 78 ms; 564 (this rule) into 3, 69 ms; one call 91 ms. At 10k items every
# fixed cost from 64 to 564 gave 30-32 ms.
_ROW_COST, _CALL_COST, _ITEMS_PER_CALL_COST = 10, 64, 100


def length_groups(lengths: Sequence[int], session_length: int = 50, n_items: int = 0) -> list[list[int]]:
    """Split a batch into groups of similar session length (indices into ``lengths``).

    The runner pads a call to its longest session, so one 50-item session makes every other
    session of the call cost 50 positions: with lengths spread over 1..50, one call per group of
    similar length encodes ~2x fewer positions. The split minimises
    ``sum(CALL + n * (ROW + longest))`` over groups of the sorted lengths (a DP over the distinct
    lengths, at most ``session_length`` of them); ``n_items`` (the catalogue size) raises CALL."""
    if not lengths:
        return []
    capped = [max(1, min(n, session_length)) for n in lengths]
    order = sorted(range(len(capped)), key=capped.__getitem__)
    values = sorted(set(capped))
    count_upto = []  # sessions with length <= values[j]
    total = 0
    for v in values:
        total += capped.count(v)
        count_upto.append(total)
    call = _CALL_COST + n_items // _ITEMS_PER_CALL_COST
    best = [0.0] * (len(values) + 1)  # best[j]: cost of the sessions with the j shortest lengths
    cut = [0] * (len(values) + 1)
    for j in range(1, len(values) + 1):
        row = _ROW_COST + values[j - 1]  # every session of a group costs its longest
        best[j], cut[j] = min(
            (best[i] + call + (count_upto[j - 1] - (count_upto[i - 1] if i else 0)) * row, i) for i in range(j)
        )
    bounds = []
    j = len(values)
    while j > 0:
        bounds.append(count_upto[j - 1])
        j = cut[j]
    groups, start = [], 0
    for stop in reversed(bounds):
        groups.append(order[start:stop])
        start = stop
    return groups


class Scorer:
    """``hybrid``: the co-occurrence half of the scores (counts and bonus; scoring thread only)."""

    def __init__(self, config: PipelineConfig, metrics: WorkerMetrics, hybrid: LiveHybrid | None = None) -> None:
        self.config, self.metrics, self.hybrid = config, metrics, hybrid
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoring")

    async def rank(
        self,
        runner: Runner,
        sessions: list[list[str]],
        types: list[list[str]],
        pairs: Sequence[tuple[list[str], str]] = (),
        users: Sequence[str] | None = None,
    ) -> list[Ranked | None]:
        """Per session, ``config.k`` items best first with their ``because``: from
        ``config.candidates`` results (at most the model's K, fixed at export; model_slot.Fit
        logged a smaller one at swap time), re-ranked by MMR when on; None for a session whose
        scoring failed (its feed is left as it was). ``pairs`` (the batch's (session before,
        item) events) are counted into the co-occurrence table first; ``users`` (the sessions'
        owners) lets the hybrid store and score them in its session index."""
        cfg = self.config
        want = min(cfg.candidates, runner.k)
        loop = asyncio.get_running_loop()
        try:
            ranked: list[Explained | None] = await loop.run_in_executor(
                self.executor, self._timed_recommend, runner, sessions, types, want, cfg.exclude_seen, pairs, users
            )
        except Exception:
            log.exception("batch scoring failed; scoring its %d users one by one", len(sessions))
            ranked = [await self._score_one(runner, s, t, want) for s, t in zip(sessions, types, strict=True)]
        return await loop.run_in_executor(self.executor, self._feeds, runner, ranked)

    def _feeds(self, runner: Runner, ranked: list[Explained | None]) -> list[Ranked | None]:
        """The scored lists cut (or re-ranked by MMR) to ``k``, all sessions at once."""
        cfg = self.config
        done = [i for i, r in enumerate(ranked) if r is not None]
        pools = [Ranked(list(r[0]), [float(x) for x in r[1]], list(r[2])) for r in ranked if r is not None]
        if cfg.mmr_lambda < 1.0:
            pools = diversify(runner, pools, cfg.k, cfg.mmr_lambda)
        out: list[Ranked | None] = [None] * len(ranked)
        for i, pool in zip(done, pools, strict=True):
            out[i] = Ranked(*(column[: cfg.k] for column in pool))
        return out

    def _timed_recommend(
        self,
        runner: Runner,
        sessions: list[list[str]],
        types: list[list[str]],
        want: int,
        exclude_seen: bool,
        pairs: Sequence[tuple[list[str], str]] = (),
        users: Sequence[str] | None = None,
    ) -> list[Explained]:
        # timed in the scoring thread: with batches pipelined, time queued behind the previous
        # batch's scoring is not scoring
        t0 = time.perf_counter()
        try:
            bonus = self._bonus(runner, sessions, pairs, not exclude_seen, users)
            n_items = len(runner.item_ids)
            groups = length_groups([len(s) for s in sessions], self.config.session_length, n_items)
            if len(groups) <= 1:
                return runner.recommend(sessions, types, want, exclude_seen, bonus, explain=True)
            out: list[Explained] = [([], [], [])] * len(sessions)
            for group in groups:
                part = None if bonus is None else (bonus[0][group], bonus[1][group])
                ranked = runner.recommend(
                    [sessions[i] for i in group], [types[i] for i in group], want, exclude_seen, part, explain=True
                )
                for i, pair in zip(group, ranked, strict=True):
                    out[i] = pair
            return out
        finally:
            self.metrics.score_seconds.observe(time.perf_counter() - t0)

    def _bonus(
        self,
        runner: Runner,
        sessions: list[list[str]],
        pairs: Sequence[tuple[list[str], str]],
        keep_seen: bool,
        users: Sequence[str] | None = None,
    ) -> SparseBonus | None:
        """Count the batch's events into the co-occurrence table, then the sessions' bonus (in
        batch order on the one scoring thread: the table sees events in partition order)."""
        if self.hybrid is None:
            return None
        self._count(runner, pairs)
        return self.hybrid.bonus(runner, sessions, keep_seen, users)

    def _count(self, runner: Runner, pairs: Sequence[tuple[list[str], str]]) -> None:
        """Count events into the co-occurrence table (scoring thread), started from ``runner``'s
        shipped table the first time."""
        if self.hybrid is None:
            return
        if self.hybrid.table is None:
            base = runner.cooccurrence_file
            self.hybrid.adopt(Cooccurrence.load(base) if base is not None else None)
        self.hybrid.observe(pairs)

    async def observe(self, runner: Runner, pairs: Sequence[tuple[list[str], str]]) -> None:
        """Count a batch's events without scoring any session (a batch whose users all got the
        popularity control), in batch order on the scoring thread like :meth:`rank`'s count."""
        if self.hybrid is not None and pairs:
            await asyncio.get_running_loop().run_in_executor(self.executor, self._count, runner, pairs)

    async def _score_one(self, runner: Runner, session: list[str], types: list[str], want: int) -> Explained | None:
        loop = asyncio.get_running_loop()
        try:
            out = await loop.run_in_executor(
                self.executor, runner.recommend, [session], [types], want, self.config.exclude_seen, None, True
            )
            return out[0]
        except Exception:
            log.exception("scoring a session of %d items failed; its feed is left as it was", len(session))
            return None

    async def forget(self, users: Sequence[str]) -> None:
        """Empty erased users' sessions in the hybrid's session index (it keys them by user), on the
        scoring thread (the index is not thread-safe). The co-occurrence counts are aggregates over
        everybody and stay (docs/privacy.md)."""
        index = self.hybrid.table.sessions if self.hybrid is not None and self.hybrid.table is not None else None
        if index is not None:
            await asyncio.get_running_loop().run_in_executor(self.executor, index.forget, users)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
