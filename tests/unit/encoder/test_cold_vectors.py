"""Untrained rows of the whole item table borrow their text-nearest trained rows' vectors outside
training; by index, while training, or with ``cold_neighbours`` 0 they keep their text projection."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from streamrec.encoder.cold_vectors import borrow_for_untrained
from streamrec.encoder.model import ModelConfig, Recommender


def _model(cold_neighbours: int) -> Recommender:
    torch.manual_seed(0)
    cfg = ModelConfig(d=16, n_layers=1, n_heads=2, session_length=8, n_items=30, text_dim=6)
    cfg.cold_neighbours = cold_neighbours
    m = Recommender(cfg).eval()
    with torch.no_grad():
        m.items.text_emb.copy_(torch.randn(30, 6))
        m.items.text_emb[5] = 2.0 * m.items.text_emb[7]  # row 5 reads like row 7 (cosine 1)
        m.items.warm[5] = False
    return m


def test_an_untrained_row_takes_its_twin_by_text() -> None:
    m = _model(cold_neighbours=1)
    table = m.items()  # [30, d]
    assert torch.allclose(table[5], table[7], atol=1e-6)
    assert torch.allclose(table[8], m.items(torch.tensor([8]))[0], atol=1e-6)  # trained rows unchanged


def test_by_index_in_training_or_switched_off_the_text_projection_stays() -> None:
    proj = _model(cold_neighbours=0).items
    assert proj.text_proj is not None
    expect = F.normalize(proj.text_proj(proj.text_emb[5:6]), dim=-1)[0]
    assert torch.allclose(proj()[5], expect, atol=1e-6)
    m = _model(cold_neighbours=3)
    assert torch.allclose(m.items(torch.tensor([5]))[0], expect, atol=1e-6)
    m.items.cfg.id_dropout = 0.0
    m.train()
    assert torch.allclose(m.items()[5], expect, atol=1e-6)


def test_weights_follow_text_cosine_and_rows_without_text_keep_theirs() -> None:
    vectors = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.3, 0.7]]), dim=-1)
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.0, 0.0]])
    warm = torch.tensor([True, True, False, False])
    out = borrow_for_untrained(vectors, text, warm, k=2, temperature=0.05)
    assert out[2, 0] > 0.99  # text close to row 0: nearly row 0's vector
    assert torch.equal(out[3], vectors[3]) and torch.equal(out[:2], vectors[:2])
