"""A tiny model and a learnable toy stream for trainer tests (built in code, no weights)."""

from __future__ import annotations

import torch

from streamrec.contracts.training_batch import Example
from streamrec.encoder.artifact import TrainedModel
from streamrec.encoder.model import ModelConfig, Recommender

N_ITEMS = 40
STEP = 7  # next item = last item + STEP (mod N): learnable from scratch by a session tower


def tiny_trained(n_items: int = N_ITEMS, seed: int = 0, text_dim: int = 0) -> TrainedModel:
    """``text_dim`` > 0 adds a (random) text tower, for tests of text-only (cold) items."""
    torch.manual_seed(seed)
    cfg = ModelConfig(d=16, n_layers=1, n_heads=2, session_length=8, dropout=0.0, n_items=n_items, text_dim=text_dim)
    return TrainedModel(model=Recommender(cfg), item_ids=[f"i{j}" for j in range(n_items)], config={})


def chain_examples(n: int, seed: int, n_items: int = N_ITEMS, step: int = STEP) -> list[Example]:
    """``n`` examples of 3-item prefixes following the ``step`` chain, and their next item
    (another ``step`` is the same users' interests after a drift)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for k in range(n):
        start = int(torch.randint(0, n_items, (1,), generator=g))
        items = [f"i{(start + step * j) % n_items}" for j in range(4)]
        out.append(Example(f"u{k}", items[:-1], ["click"] * 3, items[-1], "click", 0.0, f"e{step}-{k}"))
    return out
