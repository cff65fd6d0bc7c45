"""The session rows a model reads, the same in training and in serving: one place, so the two
cannot drift apart (a training/serving skew).

A session is the newest ``L`` events, left-padded (newest at position L-1) into ``[B, L]``
arrays with a boolean mask; event types are :data:`TYPE_INDEX` values, 0 being padding
(docs/contracts.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from streamrec.contracts.events import EVENT_TYPES

TYPE_INDEX = {name: i + 1 for i, name in enumerate(EVENT_TYPES)}  # 0 = padding


def left_pad(
    rows: Sequence[Sequence[float] | np.ndarray], length: int, dtype: type = np.int64
) -> tuple[np.ndarray, np.ndarray]:
    """Newest ``length`` values of each row, left-padded with 0 -> (values [B, L] of ``dtype``,
    mask [B, L] bool, True on real values)."""
    out = np.zeros((len(rows), length), dtype=dtype)
    mask = np.zeros((len(rows), length), dtype=bool)
    for b, row in enumerate(rows):
        tail = row[-length:] if length else row[:0]
        if len(tail):
            out[b, length - len(tail) :] = tail
            mask[b, length - len(tail) :] = True
    return out, mask
