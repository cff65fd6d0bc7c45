"""Ranking metrics on full-catalogue scores (leave-one-out: one target per user).

Ranks are 0-based and ties are broken by catalogue row (as a stable sort by descending score
would), so a method that scores everything equal is not credited with a lucky rank.
"""

from __future__ import annotations

import numpy as np


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """scores float [B, N] (excluded items at -inf), targets int [B] -> 0-based rank int [B]."""
    rows = np.arange(len(targets))
    s_t = scores[rows, targets][:, None]  # [B, 1]
    above = (scores > s_t).sum(1)  # [B]
    ties_before = ((scores == s_t) & (np.arange(scores.shape[1])[None, :] < targets[:, None])).sum(1)  # [B]
    return (above + ties_before).astype(np.int64)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best items per row, best first (ties by row index) -> int [B, k]."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # [B, k] unordered
    vals = np.take_along_axis(scores, part, 1)  # [B, k]
    order = np.lexsort((part, -vals), axis=1)  # by score desc, then row asc
    return np.take_along_axis(part, order, 1)


def hit_rate(ranks: np.ndarray, k: int = 10) -> float:
    return float(np.mean(ranks < k)) if len(ranks) else 0.0


def ndcg(ranks: np.ndarray, k: int = 10) -> float:
    """One relevant item: DCG = 1/log2(rank+2) inside the top k, ideal DCG = 1."""
    if not len(ranks):
        return 0.0
    gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
    return float(np.mean(gains))


def mrr(ranks: np.ndarray) -> float:
    return float(np.mean(1.0 / (ranks + 1.0))) if len(ranks) else 0.0


def coverage(top: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one top list."""
    return float(len(np.unique(top)) / n_items) if n_items else 0.0


def intra_list_diversity(top: np.ndarray, vectors: np.ndarray) -> float:
    """Mean over lists of the mean pairwise (1 - cosine) between the listed items' ``vectors``."""
    if top.shape[0] == 0 or top.shape[1] < 2:
        return 0.0
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)  # [N, e]
    lv = v[top]  # [B, k, e]
    sim = lv @ lv.transpose(0, 2, 1)  # [B, k, k]
    k = top.shape[1]
    off = (sim.sum((1, 2)) - np.trace(sim, axis1=1, axis2=2)) / (k * (k - 1))  # [B] mean off-diagonal
    return float(np.mean(1.0 - off))


def category_coverage(top: np.ndarray, categories: np.ndarray) -> float:
    """Mean over lists of the share of all categories (``categories``: multi-hot [N, C]) that at
    least one listed item has: how many of a user's possible tastes one list touches."""
    if top.shape[0] == 0:
        return 0.0
    return float((categories[top].max(axis=1) > 0).mean())  # [B, C] -> mean per list of the share
