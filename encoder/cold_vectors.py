"""Vectors for untrained item rows, borrowed from their nearest trained rows by text.

A row with no training event (held out, or reaching the catalogue after training: ``warm`` False
in :class:`~streamrec.encoder.model.ItemTower`) has only its text projection, which training
never sharpens the way it sharpens an id-backed vector: on ml-100k's held-out 10% such vectors
ranked below popularity. Its text still says which trained items it resembles, and those rows'
vectors carry what their clicks taught. So an untrained row gets the softmax-weighted mean of the
full vectors of its ``k`` nearest trained rows, nearness being the cosine of the language model's
embeddings (the measured effect: ``docs/results/README.md``, "Borrowed vectors"). Only the item's own text
decides, so it is still a text-only vector in the cold-start sense: no event of the item is read.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CHUNK = 512  # untrained rows per similarity block: [CHUNK, N_warm] floats at a time


def borrow_for_untrained(
    vectors: torch.Tensor, text_emb: torch.Tensor, warm: torch.Tensor, k: int, temperature: float
) -> torch.Tensor:
    """vectors [N, d] (normalised), text_emb [N, T], warm [N] bool -> [N, d], the untrained rows
    replaced by their neighbours' weighted mean (rows with an all-zero text embedding keep theirs)."""
    cold = torch.nonzero(~warm & (text_emb.abs().sum(-1) > 0)).flatten()  # [C]
    trained = torch.nonzero(warm).flatten()  # [W]
    k = min(k, len(trained))
    if not len(cold) or not k:  # the usual case (every row trained): no [N, T] work at all
        return vectors
    keys = F.normalize(text_emb.float(), dim=-1)  # [N, T]
    out = vectors.clone()
    warm_keys, warm_vecs = keys[trained], vectors[trained]  # [W, T], [W, d]
    for start in range(0, len(cold), CHUNK):
        rows = cold[start : start + CHUNK]  # [c]
        top = (keys[rows] @ warm_keys.T).topk(k, dim=-1)  # [c, k]
        weight = torch.softmax(top.values / temperature, dim=-1).to(vectors.dtype)  # [c, k]
        out[rows] = F.normalize((weight.unsqueeze(-1) * warm_vecs[top.indices]).sum(1), dim=-1)  # [c, d]
    return out
