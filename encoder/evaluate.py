"""Leave-one-out, full-ranking evaluation shared by validation (early stopping) and ``streamrec eval``.

Every method is a function from a batch of histories to scores over the whole catalogue; items
already in the history are excluded unless ``keep_seen`` (the target itself is never excluded,
so a repeat purchase can still be a hit).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from tqdm import tqdm

from streamrec.contracts.session_rows import left_pad
from streamrec.encoder.interests import max_over_interests
from streamrec.encoder.metrics import (
    category_coverage,
    coverage,
    hit_rate,
    intra_list_diversity,
    mrr,
    ndcg,
    target_ranks,
    top_k,
)
from streamrec.encoder.model import Recommender

ScoreFn = Callable[[list[int]], np.ndarray]  # user positions in the eval lists -> scores [b, N]


def rank_all(
    score_fn: ScoreFn,
    histories: list[np.ndarray],
    targets: np.ndarray,
    keep_seen: bool,
    k: int = 10,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """-> (0-based rank of each target int [U], top-k lists int [U, k])."""
    return rank_many({"": score_fn}, histories, targets, keep_seen, k, batch_size)[""]


def rank_many(
    score_fns: dict[str, ScoreFn],
    histories: list[np.ndarray],
    targets: np.ndarray,
    keep_seen: bool,
    k: int = 10,
    batch_size: int = 256,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """:func:`rank_all` of several methods in one pass over the batches (methods inner), so
    methods built on a shared :func:`memo_batch` score (the model's, in the hybrids) compute it
    once per batch."""
    pools = rank_pools(score_fns, histories, targets, keep_seen, k, batch_size)
    return {name: (ranks, rows) for name, (ranks, rows, _) in pools.items()}


def rank_pools(
    score_fns: dict[str, ScoreFn],
    histories: list[np.ndarray],
    targets: np.ndarray,
    keep_seen: bool,
    size: int,
    batch_size: int = 256,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per method: (0-based rank of each target int [U], each user's ``size`` best rows int [U,
    size], best first, and their scores float [U, size], -inf where excluded): the candidate
    pool a re-rank (the worker's MMR) starts from."""
    ranks: dict[str, list[np.ndarray]] = {name: [] for name in score_fns}
    tops: dict[str, list[np.ndarray]] = {name: [] for name in score_fns}
    top_scores: dict[str, list[np.ndarray]] = {name: [] for name in score_fns}
    batches = range(0, len(targets), batch_size)  # minutes on a large log: show where it is
    for start in tqdm(batches, desc=f"ranking {len(targets)} users", unit="batch", mininterval=5.0, leave=False):
        users = list(range(start, min(start + batch_size, len(targets))))
        seen = None
        for name, fn in score_fns.items():
            scores = np.asarray(fn(users), dtype=np.float64)  # [b, N]
            if not keep_seen:
                if seen is None:
                    seen = np.zeros(scores.shape, bool)
                    for b, u in enumerate(users):
                        h = histories[u]
                        seen[b, h[h != targets[u]]] = True
                scores[seen] = -np.inf
            ranks[name].append(target_ranks(scores, targets[users]))
            tops[name].append(top_k(scores, size))
            top_scores[name].append(np.take_along_axis(scores, tops[name][-1], 1))
    empty = (np.zeros(0, np.int64), np.zeros((0, size), np.int64), np.zeros((0, size)))
    return {
        name: (np.concatenate(ranks[name]), np.concatenate(tops[name]), np.concatenate(top_scores[name]))
        if ranks[name]
        else empty
        for name in score_fns
    }


def memo_batch(fn: ScoreFn) -> ScoreFn:
    """``fn`` remembering its last batch: several methods in one :func:`rank_many` pass share it."""
    last: dict[tuple[int, ...], np.ndarray] = {}

    def score(users: list[int]) -> np.ndarray:
        key = tuple(users)
        if key not in last:
            last.clear()
            last[key] = fn(users)
        return last[key]

    return score


def summarize(
    ranks: np.ndarray,
    tops: np.ndarray,
    n_items: int,
    div_vectors: np.ndarray | None,
    k: int = 10,
    categories: np.ndarray | None = None,
) -> dict:
    """Ranking figures of the targets and list figures of the top-k lists (``categories``: the
    items' multi-hot categories [N, C], for the category coverage)."""
    out = {
        f"hr@{k}": hit_rate(ranks, k),
        f"ndcg@{k}": ndcg(ranks, k),
        "mrr": mrr(ranks),
        "coverage": coverage(tops, n_items),
        "users": len(ranks),
    }
    if div_vectors is not None:
        out["diversity"] = intra_list_diversity(tops, div_vectors)
    if categories is not None:
        out["category_coverage"] = category_coverage(tops[:, :k], categories)
    return out


def model_score_fn(
    model: Recommender,
    item_matrix: torch.Tensor,
    histories: list[np.ndarray],
    types: list[np.ndarray],
    gaps: list[np.ndarray] | None,
    session_length: int,
    device: torch.device,
) -> ScoreFn:
    """Scores = session vector of the newest ``session_length`` history items @ item matrix (with
    interests, each item's best interest: what the serving graph ranks by)."""

    def score(users: list[int]) -> np.ndarray:
        items, mask = left_pad([histories[u] for u in users], session_length)  # [b, L]
        tys, _ = left_pad([types[u] for u in users], session_length)  # [b, L]
        g = None
        if gaps is not None:
            g = torch.from_numpy(left_pad([gaps[u] for u in users], session_length, np.float32)[0]).to(device)  # [b, L]
        with torch.no_grad():
            vecs = item_matrix[torch.from_numpy(items).to(device)]  # [b, L, d]
            sess = model.session(vecs, torch.from_numpy(tys).to(device), torch.from_numpy(mask).to(device), g)
            return max_over_interests(sess, item_matrix).float().cpu().numpy()  # [b, N]

    return score
