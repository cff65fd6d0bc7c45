"""Reference recommenders computed in the same eval run as the model, on the same histories:
popularity here; the co-occurrence kNN is :mod:`streamrec.cooccurrence` (raw counts), the same
table the hybrid and the worker use. On ml-100k that kNN reproduces the published figure of the
baseline (HR@10 0.2004, NDCG@10 0.1026) within about 2 %, which checks our protocol.
"""

from __future__ import annotations

import numpy as np


def popularity_scores(histories: list[np.ndarray], n_items: int) -> np.ndarray:
    """Event count of each item over all histories -> float [N]."""
    counts = np.zeros(n_items, dtype=np.float64)
    for h in histories:
        np.add.at(counts, h, 1.0)
    return counts
