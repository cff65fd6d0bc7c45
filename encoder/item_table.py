"""Grow or refresh a trained model's item table in place: new catalogue items as cold rows,
items first seen in events as trainable id rows.

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
    if n_new:
        _grow(tower, tower.id_emb.weight.new_zeros(n_new, tower.id_emb.weight.shape[1]), text_emb, warm=False)


def append_id_rows(tower: ItemTower, init: torch.Tensor) -> None:
    """Append ``len(init)`` id rows (init float32 [n, d], their starting id embeddings) with no
    text: items first seen in events, trained online from their first example on."""
    if len(init):
        _grow(tower, init, tower.text_emb.new_zeros(len(init), tower.text_emb.shape[1]), warm=True)


def carry_moments(opt: torch.optim.Optimizer, old: torch.Tensor, new: torch.Tensor) -> None:
    """A grown id table is a new parameter: point ``opt`` at it and pad its moments with zeros
    for the new rows (the other rows keep theirs, so growing does not reset what Adam knows)."""
    for group in opt.param_groups:
        group["params"] = [new if p is old else p for p in group["params"]]
    state = opt.state.pop(old, None)
    if state:
        pad = new.shape[0] - old.shape[0]
        for key in ("exp_avg", "exp_avg_sq"):
            state[key] = torch.cat([state[key], state[key].new_zeros(pad, *state[key].shape[1:])])
        opt.state[new] = state


def _grow(tower: ItemTower, id_rows: torch.Tensor, text_rows: torch.Tensor, warm: bool) -> None:
    old = tower.id_emb.weight  # [N, d]
    grown = torch.cat([old.detach(), id_rows.to(old)])  # [N + n, d]
    tower.id_emb.weight = nn.Parameter(grown, requires_grad=old.requires_grad)
    tower.id_emb.num_embeddings = grown.shape[0]
    tower.text_emb = torch.cat([tower.text_emb, text_rows.to(tower.text_emb)])  # [N + n, T]
    tower.warm = torch.cat([tower.warm, tower.warm.new_full((len(id_rows),), warm)])  # [N + n]
    tower.cfg.n_items = grown.shape[0]


@torch.no_grad()
def set_text_rows(
    tower: ItemTower, rows: torch.Tensor, text_emb: torch.Tensor, cold: torch.Tensor | None = None
) -> None:
    """Replace the text-model embeddings of existing ``rows`` [n] int64 (their text changed);
    rows where ``cold`` [n] bool is set become text-only (their content changed: the id embedding
    described the old one)."""
    tower.text_emb[rows] = text_emb.to(tower.text_emb)  # [n, T]
    if cold is not None:
        tower.warm[rows[cold]] = False
