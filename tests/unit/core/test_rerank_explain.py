"""The worker's numpy steps after the serving graph, against torch: the MMR re-rank of a candidate
pool (streamrec.rerank) and each feed item's ``because`` (streamrec.explain)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from streamrec.explain import because
from streamrec.rerank import mmr


def _torch_mmr(scores: np.ndarray, vectors: np.ndarray, k: int, lam: float) -> list[list[int]]:
    """Carbonell & Goldstein's greedy MMR, one pool at a time, in torch (the reference)."""
    out = []
    for s_row, v_row in zip(torch.from_numpy(scores), torch.from_numpy(vectors), strict=True):
        valid = torch.isfinite(s_row)
        if not valid.any():
            out.append([])
            continue
        lo, hi = s_row[valid].min(), s_row[valid].max()
        rel = (s_row - lo) / (hi - lo) if hi > lo else torch.ones_like(s_row)
        v = F.normalize(v_row.double(), dim=-1)
        sim = v @ v.T
        picked: list[int] = []
        for _ in range(min(k, int(valid.sum()))):
            best, best_gain = -1, -float("inf")
            for j in range(len(s_row)):
                if not valid[j] or j in picked:
                    continue
                penalty = max((float(sim[j, i]) for i in picked), default=0.0)
                gain = lam * float(rel[j]) - (1 - lam) * penalty
                if gain > best_gain:
                    best, best_gain = j, gain
            picked.append(best)
        out.append(picked)
    return out


def _torch_because(session: np.ndarray, mask: np.ndarray, items: np.ndarray) -> np.ndarray:
    sim = F.normalize(torch.from_numpy(items), dim=-1) @ F.normalize(torch.from_numpy(session), dim=-1).transpose(1, 2)
    return sim.masked_fill(~torch.from_numpy(mask).unsqueeze(1), -float("inf")).argmax(dim=2).numpy()  # [B, K]


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 12), st.floats(0, 1), st.integers(0, 10_000))
def test_mmr_matches_torch_and_keeps_k_distinct_candidates(p: int, k: int, lam: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = -np.sort(-rng.standard_normal((3, p)), axis=1)  # best first, as the graph returns them
    scores[1, p // 2 :] = -np.inf  # a shorter pool (empty when p = 1)
    vectors = rng.standard_normal((3, p, 6))
    picks = mmr(scores, vectors, k, lam)
    assert picks.shape == (3, min(k, p))
    for row, ref, s in zip(picks.tolist(), _torch_mmr(scores, vectors, k, lam), scores, strict=True):
        kept = [j for j in row if j >= 0]
        assert kept == ref  # same picks, same order
        assert len(kept) == min(k, int(np.isfinite(s).sum())) == len(set(kept))
        assert row[len(kept) :] == [-1] * (len(row) - len(kept))  # a pool that ran out
        assert not kept or kept[0] == 0  # the most relevant always leads


def test_mmr_prefers_a_different_item_over_a_near_copy_and_lambda_1_is_the_score_order() -> None:
    vecs = np.array([[[1.0, 0.0], [0.99, 0.01], [0.0, 1.0]]])
    scores = np.array([[1.0, 0.95, 0.9]])
    assert mmr(scores, vecs, 2, 0.5).tolist() == [[0, 2]]
    assert mmr(scores, vecs, 2, 1.0).tolist() == [[0, 1]]
    assert mmr(np.array([[0.5, -np.inf, 0.7]]), vecs, 3, 1.0).tolist() == [[2, 0, -1]]


def test_because_matches_torch() -> None:
    rng = np.random.default_rng(0)
    session, items = rng.standard_normal((16, 9, 8)), rng.standard_normal((16, 5, 8))
    mask = rng.random((16, 9)) < 0.7
    mask[:, -1] = True  # every session has an item
    np.testing.assert_array_equal(because(session, mask, items), _torch_because(session, mask, items))


def test_because_prefers_the_newest_of_equal_items_and_needs_a_session_item() -> None:
    same = np.ones((1, 3, 2))
    assert because(same, np.array([[True, True, False]]), np.ones((1, 2, 2))).tolist() == [[1, 1]]
    zero = np.zeros((1, 2, 2))  # items without a learned vector: cosine 0, still a session item
    assert because(zero, np.ones((1, 2), bool), np.ones((1, 1, 2))).tolist() == [[1]]
    assert because(same, np.zeros((1, 3), bool), np.ones((1, 2, 2))).tolist() == [[-1, -1]]
