"""``because``: for each recommended item, the session item most like it.

An item's score is its dot product with the session vector, which the tower builds from the
session's item vectors; the session item whose vector is closest to the recommended one (the
highest cosine) is the one that pulls it up most, and the one a reader recognises ("because you
viewed ..."). It is computed after ranking, on the feed's own K items against the session's last
L items (the ones the model read): B x K x L x d multiply-adds, 33 M for a batch of 256 at
K = 20, L = 50, d = 128, next to 1.6 G for that batch's scoring against 50k items alone (the
model bench measures the ratio). Numpy only: the runner runs it on the rows it encoded the batch to
(``Runner.recommend(..., explain=True)``), after the serving graph, without torch.
"""

from __future__ import annotations

import numpy as np


def because(session_vectors: np.ndarray, session_mask: np.ndarray, item_vectors: np.ndarray) -> np.ndarray:
    """``session_vectors [B, L, d]`` (the session's items, oldest first), ``session_mask [B, L]``
    (False = padding or an item without a vector), ``item_vectors [B, K, d]`` -> int64 [B, K]:
    per item, the session position with the highest cosine; ties go to the newest position, and
    a session without any real position gets -1. Float32; the cosine's argmax over the session is
    that of the dot product over the session item's norm (the recommended item's own norm is the
    same for all), which skips normalising B x L x d vectors (3x faster at B = 64)."""
    sess = np.asarray(session_vectors, dtype=np.float32)  # [B, L, d]
    norms = np.sqrt(np.einsum("bld,bld->bl", sess, sess))  # [B, L]
    sim = np.asarray(item_vectors, dtype=np.float32) @ sess.transpose(0, 2, 1)  # [B, K, L]
    sim = sim / np.where(norms > 0, norms, 1.0)[:, None, :]  # a zero vector: 0
    mask = np.asarray(session_mask, dtype=bool)  # [B, L]
    sim = np.where(mask[:, None, :], sim, -np.inf)
    newest_first = sim[:, :, ::-1].argmax(axis=2)  # [B, K]: argmax takes the first of ties
    pos = sess.shape[1] - 1 - newest_first
    return np.where(mask.any(axis=1, keepdims=True), pos, -1)


def because_rows(matrix: np.ndarray, session_rows: np.ndarray, session_mask: np.ndarray, top: np.ndarray) -> np.ndarray:
    """:func:`because` on catalogue rows: ``matrix [N, d]``, ``session_rows``/``session_mask``
    [B, L] (as the runner encoded the batch), ``top`` [B, K] -> the explaining rows int64 [B, K]
    (a session without items: its first position's row)."""
    pos = because(matrix[session_rows], session_mask, matrix[top])  # [B, K]
    return np.take_along_axis(session_rows, np.maximum(pos, 0), 1)
