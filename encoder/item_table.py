"""Grow or refresh a trained model's item table in place: new catalogue items as cold rows.

An item that reached the catalogue after offline training has no id embedding worth using, so
it joins as a text-only row (``warm`` False, see :class:`~streamrec.encoder.model.ItemTower`):
its vector is the text projection of its text-model embedding, in the same space as every other
row. Rows are only ever appended, so row numbers already held elsewhere (replay buffer, held-back
window) stay valid.
"""

from __future__ import annotations

import torch
from torch import nn

from streamrec.encoder.model import ItemTower


def append_cold_rows(tower: ItemTower, text_emb: torch.Tensor) -> None:
    """Append ``len(text_emb)`` text-only rows (text_emb float32 [n, T]) to ``tower``.

    The id-embedding rows are zeros and frozen (a cold row never reads them); the tower's
    config is updated so ``tower()`` returns the whole grown table."""
    n_new = int(text_emb.shape[0])
    if n_new == 0:
        return
    old = tower.id_emb.weight  # [N, d]
    grown = torch.cat([old.detach(), old.new_zeros(n_new, old.shape[1])])  # [N + n, d]
    tower.id_emb.weight = nn.Parameter(grown, requires_grad=old.requires_grad)
    tower.id_emb.num_embeddings = grown.shape[0]
    tower.text_emb = torch.cat([tower.text_emb, text_emb.to(tower.text_emb)])  # [N + n, T]
    tower.warm = torch.cat([tower.warm, tower.warm.new_zeros(n_new)])  # [N + n], cold
    tower.cfg.n_items = grown.shape[0]


@torch.no_grad()
def set_text_rows(tower: ItemTower, rows: torch.Tensor, text_emb: torch.Tensor) -> None:
    """Replace the text-model embeddings of existing ``rows`` [n] int64 (their text changed)."""
    tower.text_emb[rows] = text_emb.to(tower.text_emb)  # [n, T]
