"""``because``: for each recommended item, the session item most like it.

An item's score is its dot product with the session vector, which the tower builds from the
session's item vectors; the session item whose vector is closest to the recommended one (the
highest cosine) is the one that pulls it up most, and the one a reader recognises ("because you
viewed ..."). It is computed after ranking, on the feed's own K items against the session's last
L items (the ones the model read): B x K x L x d multiply-adds, 33 M for a batch of 256 at
K = 20, L = 50, d = 128, next to 1.6 G for that batch's scoring against 50k items alone (the
model bench measures the ratio). Numpy only, so the worker runs it after the serving graph,
without torch.
"""

from __future__ import annotations

import numpy as np

from streamrec.rerank import unit_rows


def because(session_vectors: np.ndarray, session_mask: np.ndarray, item_vectors: np.ndarray) -> np.ndarray:
    """``session_vectors [B, L, d]`` (the session's items, oldest first), ``session_mask [B, L]``
    (False = padding or an item without a vector), ``item_vectors [B, K, d]`` -> int64 [B, K]:
    per item, the session position with the highest cosine; ties go to the newest position, and
    a session without any real position gets -1."""
    sess = unit_rows(session_vectors)[:, ::-1]  # [B, L, d], newest first: argmax takes the first of ties
    mask = np.asarray(session_mask, dtype=bool)[:, ::-1]  # [B, L]
    sim = unit_rows(item_vectors) @ sess.transpose(0, 2, 1)  # [B, K, L]
    sim = np.where(mask[:, None, :], sim, -np.inf)
    newest_first = sim.argmax(axis=2)  # [B, K]
    pos = sess.shape[1] - 1 - newest_first
    return np.where(mask.any(axis=1, keepdims=True), pos, -1)
