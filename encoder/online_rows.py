"""An online example in catalogue rows, and the full-ranking score of a model on a list of them.

Apart from :mod:`streamrec.encoder.online` because the trainer's restore, erasure and adoption
paths hold rows too, and the gate's evaluation needs nothing of the learner but its device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from streamrec.contracts.session_rows import left_pad
from streamrec.encoder.interests import max_over_interests
from streamrec.encoder.metrics import hit_rate, ndcg, target_ranks


@dataclass
class Row:
    """An example in catalogue rows, with when it entered the training topic."""

    prefix: list[int]
    types: list[int]
    target: int
    entered_at: float  # broker timestamp of the training batch, epoch seconds
    trained: bool = False
    user_id: str = ""  # whose event: an erasure drops the user's rows (streamrec.trainer.erasures)
    published: float | None = None  # the source event's Kafka timestamp (None from older workers)
    shown: str = ""  # digest of the feed held before the event: its hard negatives ("" = none known)


def row_tensors(rows: list[Row], device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Item rows, types and mask [B, L], left-padded to the longest prefix: what the tower reads."""
    L = max(len(r.prefix) for r in rows)
    idx, mask = left_pad([r.prefix for r in rows], L)  # [B, L], left-padded
    types, _ = left_pad([r.types for r in rows], L)  # [B, L]
    return tuple(torch.from_numpy(a).to(device) for a in (idx, types, mask))  # type: ignore[return-value]


@torch.no_grad()
def evaluate_rows(model: torch.nn.Module, rows: list[Row], device: torch.device) -> dict[str, float]:
    """HR@10 / NDCG@10 with full ranking over the catalogue, prefix items excluded (with interests,
    each item scored by its best one, as served)."""
    model.eval()
    items = model.items()  # [N, d]
    ranks = []
    for start in range(0, len(rows), 256):
        chunk = rows[start : start + 256]
        idx, types, mask = row_tensors(chunk, device)
        sess = model.encode_sessions(idx, types, mask)  # [b, d] or [b, M, d]
        scores = max_over_interests(sess, items).cpu().numpy()  # [b, N]
        for b, r in enumerate(chunk):
            scores[b, [p for p in r.prefix if p != r.target]] = -np.inf
        ranks.append(target_ranks(scores, np.array([r.target for r in chunk])))
    r = np.concatenate(ranks) if ranks else np.zeros(0, dtype=np.int64)
    return {"hr@10": hit_rate(r, 10), "ndcg@10": ndcg(r, 10)}
