"""Metric functions against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np

from streamrec.encoder.metrics import coverage, hit_rate, intra_list_diversity, mrr, ndcg, target_ranks, top_k


def test_ranks_with_ties_and_exclusions() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.5], [1.0, -np.inf, 0.2, 0.3]])
    # user 0: target 3 scores 0.5, one above (0.9) and a tie at a lower row (2) -> rank 2
    # user 1: target 2 scores 0.2, above it 1.0 and 0.3; the excluded item is below -> rank 2
    assert target_ranks(scores, np.array([3, 2])).tolist() == [2, 2]
    assert top_k(scores, 2).tolist() == [[1, 2], [0, 3]]


def test_hr_ndcg_mrr_by_hand() -> None:
    ranks = np.array([0, 1, 9, 10])
    assert hit_rate(ranks, 10) == 0.75
    assert math.isclose(ndcg(ranks, 10), (1 + 1 / math.log2(3) + 1 / math.log2(11) + 0) / 4)
    assert math.isclose(mrr(ranks), (1 + 1 / 2 + 1 / 10 + 1 / 11) / 4)


def test_coverage_and_diversity() -> None:
    top = np.array([[0, 1], [1, 2]])
    assert coverage(top, 10) == 0.3
    vecs = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    # list 1: orthogonal -> 1; list 2: identical -> 0
    assert math.isclose(intra_list_diversity(top, vecs), 0.5)
