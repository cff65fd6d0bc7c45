"""Leave-one-out, full-ranking evaluation shared by validation (early stopping) and ``streamrec eval``.

Every method is a function from a batch of histories to scores over the whole catalogue; items
already in the history are excluded unless ``keep_seen`` (the target itself is never excluded,
so a repeat purchase can still be a hit).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from streamrec.contracts.session_rows import left_pad
from streamrec.encoder.metrics import coverage, hit_rate, intra_list_diversity, mrr, ndcg, target_ranks, top_k
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
    ranks, tops = [], []
    for start in range(0, len(targets), batch_size):
        users = list(range(start, min(start + batch_size, len(targets))))
        scores = np.asarray(score_fn(users), dtype=np.float64)  # [b, N]
        if not keep_seen:
            for b, u in enumerate(users):
                seen = histories[u]
                scores[b, seen[seen != targets[u]]] = -np.inf
        ranks.append(target_ranks(scores, targets[users]))
        tops.append(top_k(scores, k))
    if not ranks:
        return np.zeros(0, np.int64), np.zeros((0, k), np.int64)
    return np.concatenate(ranks), np.concatenate(tops)


def summarize(ranks: np.ndarray, tops: np.ndarray, n_items: int, div_vectors: np.ndarray | None, k: int = 10) -> dict:
    out = {
        f"hr@{k}": hit_rate(ranks, k),
        f"ndcg@{k}": ndcg(ranks, k),
        "mrr": mrr(ranks),
        "coverage": coverage(tops, n_items),
        "users": len(ranks),
    }
    if div_vectors is not None:
        out["diversity"] = intra_list_diversity(tops, div_vectors)
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
    """Scores = session vector of the newest ``session_length`` history items @ item matrix."""

    def score(users: list[int]) -> np.ndarray:
        items, mask = left_pad([histories[u] for u in users], session_length)  # [b, L]
        tys, _ = left_pad([types[u] for u in users], session_length)  # [b, L]
        g = None
        if gaps is not None:
            g = torch.from_numpy(left_pad([gaps[u] for u in users], session_length, np.float32)[0]).to(device)  # [b, L]
        with torch.no_grad():
            vecs = item_matrix[torch.from_numpy(items).to(device)]  # [b, L, d]
            sess = model.session(vecs, torch.from_numpy(tys).to(device), torch.from_numpy(mask).to(device), g)
            return (sess @ item_matrix.T).float().cpu().numpy()  # [b, N]

    return score
